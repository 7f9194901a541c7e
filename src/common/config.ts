import {
  ConfigError, autoIntOpt, boolOpt, bytesOpt, parseBytes, choiceOpt, intOpt, listOpt, numberOpt, optionalStrOpt, parseHttpUrl, parseNumber, parseUrlList, strOpt,
  type Option,
} from "./config-parse.js";

/**
 * Every setting of every role, with its environment variable, flag, default and unit. The seed's
 * names (PORT, HOST, MODEL_PATH, WORKER_ID, WORKER_URL, COORDINATOR_URL) keep their meaning.
 */
const MiB = 1024 ** 2;
const GiB = 1024 ** 3;

export const LOG_LEVELS = ["trace", "debug", "info", "warn", "error", "fatal", "silent"] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export const SCHEDULER_PROFILES = ["cache-aware", "seed", "least-load", "round-robin"] as const;
export type SchedulerProfileName = (typeof SCHEDULER_PROFILES)[number];

/** A comma-separated list of keys (API_KEYS, ADMIN_API_KEYS): secrets, never printed. */
const keyListOpt = (env: string, flag: string, describe: string): Option<string[]> => ({
  env, flag, default: [] as string[], describe, secret: true,
  parse: (r: string) => {
    const keys = r.split(",").map((k) => k.trim()).filter((k) => k !== "");
    if (keys.some((k) => k.length < 8)) throw new Error("every key needs at least 8 characters");
    return keys;
  },
});

/**
 * OTLP exporter headers as OpenTelemetry spells them (`key=value,key2=value2`, values
 * percent-encoded): a collector's auth token, so a secret. Kept as written (checked here) so that
 * `serve` hands it to its workers unchanged; tracing.ts splits it.
 */
const otlpHeadersOpt: Option<string | undefined> = {
  env: "OTEL_EXPORTER_OTLP_HEADERS", flag: "--otlp-headers", default: undefined, secret: true,
  describe: "headers sent with every trace export, key=value,key2=value2 (percent-encoded values), e.g. a collector's authorization",
  parse: (r) => {
    parseOtlpHeaders(r);
    return r;
  },
};

/** `key=value,key2=value2` (values percent-encoded) → headers; throws on a pair without a key. */
export function parseOtlpHeaders(raw: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const pair of raw.split(",").map((p) => p.trim()).filter((p) => p !== "")) {
    const eq = pair.indexOf("=");
    if (eq < 1) throw new Error("expected key=value pairs separated by commas");
    out[pair.slice(0, eq).trim()] = decodeURIComponent(pair.slice(eq + 1).trim());
  }
  return out;
}

/** A secret from the environment (preferred: flags show in process lists). */
const secretOpt = (env: string, flag: string, describe: string): Option<string | undefined> => ({
  env, flag, default: undefined, describe, secret: true,
  parse: (r) => {
    if (r.length < 16) throw new Error("expected at least 16 characters");
    return r;
  },
});

const shared = {
  clusterToken: secretOpt("CLUSTER_TOKEN", "--cluster-token",
    "shared secret between coordinators and workers: required on heartbeats and every worker endpoint; unset, those serve loopback peers only (see INSECURE)"),
  insecure: boolOpt("INSECURE", "--insecure", false,
    "without CLUSTER_TOKEN, serve the cluster plane (heartbeats, worker endpoints, drain) to any address, as before (unsafe on a network; warned at start)"),
  maxJsonDepth: intOpt("MAX_JSON_DEPTH", "--max-json-depth", 64, 1, 10_000,
    "deepest nesting of arrays and objects a JSON body may have; checked on the bytes before parsing (400 json_too_deep)"),
  host: strOpt("HOST", "--host", "0.0.0.0", "address to listen on"),
  logLevel: choiceOpt("LOG_LEVEL", "--log-level", "info" as LogLevel, LOG_LEVELS, "log level (JSON lines on stdout)"),
  heartbeatIntervalMs: intOpt("HEARTBEAT_INTERVAL_MS", "--heartbeat-interval-ms", 10_000, 50, 3_600_000,
    "worker heartbeat period (ms); the coordinator expires a worker after 3 missed periods"),
  maxBodyBytes: bytesOpt("MAX_BODY_BYTES", "--max-body-bytes", 1 * MiB, "largest accepted request body (bytes); larger gets 413"),
  otlpEndpoint: { ...optionalStrOpt("OTEL_EXPORTER_OTLP_ENDPOINT", "--otlp-endpoint",
    "OpenTelemetry collector (OTLP/HTTP, JSON; /v1/traces is appended) receiving traces; tracing is off when unset"), parse: parseHttpUrl } as Option<string | undefined>,
  otlpHeaders: otlpHeadersOpt,
  otlpCompression: choiceOpt("OTEL_EXPORTER_OTLP_COMPRESSION", "--otlp-compression", "none", ["none", "gzip"] as const,
    "compression of trace exports; failed exports are retried with backoff (429, 502-504, refused connections) within 10 s a batch"),
  otelServiceName: optionalStrOpt("OTEL_SERVICE_NAME", "--otel-service-name", "service.name of exported traces (default: inference-engine-<role>)"),
  traceSampleRatio: { env: "TRACE_SAMPLE_RATIO", flag: "--trace-sample-ratio", default: 1, parse: (r) => parseNumber(r, 0, 1),
    describe: "share of new traces recorded (0..1); a request carrying a traceparent follows its sampled flag" } as Option<number>,
};

export const coordinatorOptions = {
  ...shared,
  port: intOpt("PORT", "--port", 1337, 0, 65535, "coordinator port (0 picks a free one)"),
  systemMaxSessions: intOpt("SYSTEM_MAX_SESSIONS", "--system-max-sessions", 1000, 1, 10_000_000,
    "live sessions the whole fleet may hold"),
  systemMaxKvBytes: bytesOpt("SYSTEM_MAX_KV_BYTES", "--system-max-kv-bytes", 64 * GiB, "KV cache the whole fleet may hold (bytes)"),
  relayBufferTokens: intOpt("RELAY_BUFFER_TOKENS", "--relay-buffer-tokens", 64, 1, 65536,
    "tokens buffered per stream toward a client before the worker stream is paused"),
  clientWriteTimeoutMs: intOpt("CLIENT_WRITE_TIMEOUT_MS", "--client-write-timeout-ms", 5000, 10, 600_000,
    "a client whose socket stays full this long (ms) is dropped"),
  prefillRetries: intOpt("PREFILL_RETRIES", "--prefill-retries", 2, 0, 10, "prefill attempts on other workers after a failure"),
  maxFailovers: intOpt("MAX_FAILOVERS", "--max-failovers", 2, 0, 10,
    "times a stream whose worker dies or stalls mid-decode continues on another worker (0: end it with an error event)"),
  firstTokenTimeoutMs: intOpt("FIRST_TOKEN_TIMEOUT_MS", "--first-token-timeout-ms", 60_000, 100, 3_600_000,
    "longest wait for a decode stream's first token before its worker counts as stalled (ms)"),
  streamStallTimeoutMs: intOpt("STREAM_STALL_TIMEOUT_MS", "--stream-stall-timeout-ms", 30_000, 100, 3_600_000,
    "longest silence of a decode stream between tokens before its worker counts as stalled (ms; not while the client holds it back)"),
  maxTokensLimit: intOpt("MAX_TOKENS_LIMIT", "--max-tokens-limit", 1_000_000, 1, 100_000_000,
    "largest max_tokens a request may ask for; the worker also checks its context"),
  maxChoices: intOpt("MAX_CHOICES", "--max-choices", 8, 1, 256,
    "largest OpenAI `n` (choices of one prompt); each choice is a session on the first choice's worker, so n is also capped by its PARALLEL"),
  workerConnectTimeoutMs: intOpt("WORKER_CONNECT_TIMEOUT_MS", "--worker-connect-timeout-ms", 2000, 10, 600_000,
    "TCP connect timeout toward a worker (ms)"),
  prefillTimeoutMs: intOpt("PREFILL_TIMEOUT_MS", "--prefill-timeout-ms", 120_000, 10, 3_600_000,
    "longest a prefill may take, queueing for a slot included (ms)"),
  apiKeys: keyListOpt("API_KEYS", "--api-keys",
    "client API keys (comma-separated), required as `Authorization: Bearer <key>` on client endpoints and the dashboard's data (off when empty)"),
  adminApiKeys: keyListOpt("ADMIN_API_KEYS", "--admin-api-keys",
    "operator keys (comma-separated): drain/undrain, the prefix index, the routing log, negative priority; they also serve as client keys. With no secret set at all (no API_KEYS, ADMIN_API_KEYS, CLUSTER_TOKEN): those serve loopback peers only"),
  maxStreamsPerKey: intOpt("MAX_STREAMS_PER_KEY", "--max-streams-per-key", 0, 0, 1_000_000,
    "inference requests one API key (one address without keys) may have in flight, queued included; beyond it 429 too_many_streams before the body is read; 0 = off"),
  maxQueuedPerKey: intOpt("MAX_QUEUED_PER_KEY", "--max-queued-per-key", 0, 0, 1_000_000,
    "requests one API key (one address without keys) may have waiting in the admission queue; beyond it 429 too_many_queued; 0 = off"),
  maxWorkers: intOpt("MAX_WORKERS", "--max-workers", 1024, 1, 1_000_000,
    "workers the table holds; a heartbeat from a new worker beyond it gets 429 too_many_workers"),
  maxHeartbeatIntervalMs: intOpt("MAX_HEARTBEAT_INTERVAL_MS", "--max-heartbeat-interval-ms", 60_000, 50, 3_600_000,
    "a heartbeat's announced interval is clamped to 50 ms..this (ms), so a worker that stops beating expires within 3 of it"),
  workerAllowlist: { ...listOpt("WORKER_ALLOWLIST", "--worker-allowlist",
    "addresses a heartbeat's worker_url may point at (comma-separated IPs, IPv4/IPv6 CIDRs or host names); others get 403 (off when empty)"), parse: parseAllowlist } as Option<string[]>,
  rateLimitRpm: intOpt("RATE_LIMIT_RPM", "--rate-limit-rpm", 0, 0, 10_000_000, "requests per minute per API key (per client address without keys); 0 = off"),
  rateLimitTpm: intOpt("RATE_LIMIT_TPM", "--rate-limit-tpm", 0, 0, 1_000_000_000, "tokens (prompt estimate + max_tokens) per minute per API key; 0 = off"),
  strictModel: boolOpt("STRICT_MODEL", "--strict-model", false,
    "seed API: reject a model name no worker serves even when the fleet serves a single model (the OpenAI API always does)"),
  schedulerProfile: choiceOpt("SCHEDULER_PROFILE", "--scheduler-profile", "cache-aware" as SchedulerProfileName, SCHEDULER_PROFILES,
    "routing profile: cache-aware (prompt prefix held + conversation affinity + load), seed (0.6 sessions + 0.4 KV), least-load, round-robin"),
  schedulerSaturation: numberOpt("SCHEDULER_SATURATION", "--scheduler-saturation", 1, 0.01, 100,
    "cache-aware: load (sessions per decode slot, or session/KV utilisation) at which a worker's cache match and affinity stop counting, so load decides"),
  kvMove: boolOpt("KV_MOVE", "--kv-move", false,
    "move a conversation's KV from a worker that cannot take its next turn to the worker picked instead, when the transfer is measured cheaper than a prefill there (off by default: docs/PERFORMANCE.md section 9)"),
  prefixIndexMaxBlocks: intOpt("PREFIX_INDEX_MAX_BLOCKS", "--prefix-index-max-blocks", 131_072, 0, 100_000_000,
    "block references the prefix index holds for all workers (at most about 300 bytes each; the oldest entries go first; 0 = off)"),
  queueSize: intOpt("QUEUE_SIZE", "--queue-size", 256, 0, 1_000_000,
    "requests that may wait for capacity; beyond it 429 with Retry-After; 0 = answer 503 at once at capacity (the seed's behaviour)"),
  queueTimeoutMs: intOpt("QUEUE_TIMEOUT_MS", "--queue-timeout-ms", 30_000, 1, 3_600_000,
    "longest a request waits in the admission queue (ms) before a 503 queue_timeout"),
  coordinatorDrainTimeoutMs: intOpt("COORDINATOR_DRAIN_TIMEOUT_MS", "--coordinator-drain-timeout-ms", 30_000, 0, 3_600_000,
    "on SIGTERM the coordinator refuses new requests (503 draining, readiness 503) and waits this long (ms) for running ones before it exits"),
  poisonTtlMs: intOpt("POISON_TTL_MS", "--poison-ttl-ms", 600_000, 0, 86_400_000,
    "how long a request on which two workers died is refused at once (502 request_crashed_worker) when sent again (ms; 0: not remembered)"),
  poisonMaxEntries: intOpt("POISON_MAX_ENTRIES", "--poison-max-entries", 10_000, 1, 10_000_000,
    "fingerprints of such requests remembered at most (the oldest go first)"),
};

export const ENGINES = ["auto", "native", "llama", "sim"] as const;
export type EngineKind = (typeof ENGINES)[number];
export const GPU_MODES = ["off", "auto", "cuda", "vulkan"] as const;
export const CPU_BACKENDS = ["auto", "native", "prebuilt"] as const;
export type CpuBackendSetting = (typeof CPU_BACKENDS)[number];
export type GpuMode = (typeof GPU_MODES)[number];

/** The simulated engine (`--engine sim`): its timing model (src/engine/sim-timing.ts) and faults (sim-faults.ts). */
export const SIM_HANG_MODES = ["none", "prefill", "decode", "process"] as const;
const simOptions = {
  simKvBytesPerToken: bytesOpt("SIM_KV_BYTES_PER_TOKEN", "--sim-kv-bytes-per-token", 22_528,
    "sim: KV cache bytes one token holds (default: TinyLlama-1.1B's, f16)"),
  simPrefillBaseMs: numberOpt("SIM_PREFILL_BASE_MS", "--sim-prefill-base-ms", 2, 0, 600_000, "sim: fixed cost of a prefill (ms)"),
  simPrefillPerTokenMs: numberOpt("SIM_PREFILL_PER_TOKEN_MS", "--sim-prefill-per-token-ms", 0.05, 0, 60_000,
    "sim: prefill cost per evaluated prompt token (ms; reused prefix tokens cost nothing)"),
  simItlMs: numberOpt("SIM_ITL_MS", "--sim-itl-ms", 20, 0, 600_000, "sim: time between two tokens of a stream decoding alone (ms; 0: as fast as possible)"),
  simItlPerSequenceMs: numberOpt("SIM_ITL_PER_SEQUENCE_MS", "--sim-itl-per-sequence-ms", 0.5, 0, 60_000,
    "sim: inter-token time added per other sequence decoding at the same time (ms)"),
  simJitter: numberOpt("SIM_JITTER", "--sim-jitter", 0, 0, 0.99, "sim: relative spread of every duration (0.1: ±10%)"),
  simTokenChars: intOpt("SIM_TOKEN_CHARS", "--sim-token-chars", 0, 0, 1_000_000, "sim: pad each token's text to this many characters (0: natural words; large values model bulk streams)"),
  simSeed: intOpt("SIM_SEED", "--sim-seed", 1, 0, 2 ** 32 - 1, "sim: seed of generated text, jitter and fault draws"),
  simSlowFactor: numberOpt("SIM_SLOW_FACTOR", "--sim-slow-factor", 1, 1, 10_000, "sim fault: multiplies every duration (answer slowly)"),
  simFailPrefill: numberOpt("SIM_FAIL_PREFILL", "--sim-fail-prefill", 0, 0, 1, "sim fault: probability that a prefill fails (HTTP 500)"),
  simCrashAfterTokens: intOpt("SIM_CRASH_AFTER_TOKENS", "--sim-crash-after-tokens", 0, 0, Number.MAX_SAFE_INTEGER,
    "sim fault: the process dies (SIGKILL) once it generated this many tokens in total (0: never)"),
  simHang: choiceOpt("SIM_HANG", "--sim-hang", "none" as (typeof SIM_HANG_MODES)[number], SIM_HANG_MODES,
    "sim fault: prefill (never answers), decode (no token ever comes), process (freezes at its first prefill)"),
  simStallAfterTokens: intOpt("SIM_STALL_AFTER_TOKENS", "--sim-stall-after-tokens", -1, -1, Number.MAX_SAFE_INTEGER,
    "sim fault: a stream stops after this many tokens (-1: never)"),
  simStallMs: numberOpt("SIM_STALL_MS", "--sim-stall-ms", 0, 0, 86_400_000, "sim fault: how long a stalled stream stops (ms; 0: until cancelled)"),
  simCrashOnPrompt: optionalStrOpt("SIM_CRASH_ON_PROMPT", "--sim-crash-on-prompt",
    "sim fault: the process dies (SIGKILL) on a prompt containing this text (a poison request)"),
  simCrashOnPromptAfterTokens: intOpt("SIM_CRASH_ON_PROMPT_AFTER_TOKENS", "--sim-crash-on-prompt-after-tokens", -1, -1, Number.MAX_SAFE_INTEGER,
    "sim fault: with SIM_CRASH_ON_PROMPT, die after this many tokens of that prompt's stream (-1: while tokenizing it)"),
  simStallProbability: numberOpt("SIM_STALL_PROBABILITY", "--sim-stall-probability", 1, 0, 1, "sim fault: probability that a stream stalls"),
};

export const workerOptions = {
  ...shared,
  workerPort: { ...intOpt("WORKER_PORT", "--worker-port", 3001, 0, 65535, "worker port (0 picks a free one)"), aliases: ["--port"] },
  workerId: optionalStrOpt("WORKER_ID", "--worker-id", "worker id (default: worker-<port>)"),
  workerUrl: { ...optionalStrOpt("WORKER_URL", "--worker-url", "URL the coordinator uses to reach this worker (default: http://127.0.0.1:<port>)"), parse: parseHttpUrl } as Option<string | undefined>,
  coordinatorUrls: {
    env: "COORDINATOR_URL", flag: "--coordinator-url", default: ["http://127.0.0.1:1337"],
    describe: "coordinator(s) to send heartbeats to, comma-separated; a DNS name is resolved again every heartbeat interval and every address it returns is heartbeated (a headless Service)", parse: parseUrlList,
  } as Option<string[]>,
  cacheAnnounceWaitMs: intOpt("CACHE_ANNOUNCE_WAIT_MS", "--cache-announce-wait-ms", 250, 0, 10_000,
    "longest wait (ms) at the end of a completed stream, before its last event, for every coordinator that answers heartbeats to acknowledge the cache entry the turn leaves, so the next turn finds it through any coordinator (0: do not wait)"),
  modelPath: optionalStrOpt("MODEL_PATH", "--model-path", "GGUF file to serve (default: ./models/*.gguf, else the built-in demo model)", ["--model"]),
  modelId: optionalStrOpt("MODEL_ID", "--model-id", "model name advertised to the coordinator (default: from the file name)"),
  modelAliases: listOpt("MODEL_ALIASES", "--model-alias", "other names clients may use for the model (comma-separated; the flag may repeat)", true),
  hfEndpoint: { ...strOpt("HF_ENDPOINT", "--hf-endpoint", "https://huggingface.co", "Hugging Face hub base URL for hf: model sources"), parse: parseHttpUrl },
  hfToken: { ...optionalStrOpt("HF_TOKEN", "--hf-token", "Hugging Face access token for gated or private hf: models (sent to the hub only)"), secret: true },
  engine: choiceOpt("ENGINE", "--engine", "auto" as EngineKind, ENGINES,
    "inference engine (auto: our native decode loop on CPU when it is built, else node-llama-cpp; llama: node-llama-cpp)"),
  gpu: choiceOpt("GPU", "--gpu", "off" as GpuMode, GPU_MODES, "GPU backend of llama.cpp (CPU by default)"),
  cpuBackend: choiceOpt("CPU_BACKEND", "--cpu-backend", "auto" as CpuBackendSetting, CPU_BACKENDS,
    "llama.cpp CPU kernels of the native engine (auto: the build for this CPU made by npm ci for models over 8 MiB, else node-llama-cpp's prebuilt ones; native; prebuilt)"),
  threads: autoIntOpt("THREADS", "--threads", 1, 1024, "compute threads of this worker (auto: cores / local workers, 1 for tiny models)"),
  forceThreads: boolOpt("FORCE_THREADS", "--force-threads", false, "allow more compute threads than cores"),
  parallel: autoIntOpt("PARALLEL", "--parallel", 1, 256, "sequences decoded together in one batch (auto: 8)"),
  contextSize: autoIntOpt("CONTEXT_SIZE", "--context-size", 16, 1_048_576, "context per sequence in tokens (auto: training context, at most 4096)"),
  batchSize: intOpt("BATCH_SIZE", "--batch-size", 512, 1, 65536, "tokens per llama.cpp decode batch"),
  workerMaxSessions: intOpt("WORKER_MAX_SESSIONS", "--worker-max-sessions", 100, 1, 1_000_000, "sessions this worker holds at once"),
  workerMaxSessionKvBytes: bytesOpt("WORKER_MAX_SESSION_KV_BYTES", "--worker-max-session-kv-bytes", 512 * MiB, "KV cache one session may hold (bytes)"),
  workerMaxKvBytes: bytesOpt("WORKER_MAX_KV_BYTES", "--worker-max-kv-bytes", 8 * GiB, "KV cache this worker holds in total (bytes)"),
  kvHostBytes: { ...bytesOpt("KV_HOST_BYTES", "--kv-host-bytes", 0,
    "host-memory KV tier: conversations that leave their slot are saved here, least recently used out first (bytes; 0: off; native engine only)"),
  parse: (r: string) => parseBytes(r, 0) },
  kvDiskDir: optionalStrOpt("KV_DISK_DIR", "--kv-disk-dir", "folder of the disk KV tier (conversations pushed out of the host tier; survives a restart; unset: no disk tier)"),
  kvDiskBytes: bytesOpt("KV_DISK_BYTES", "--kv-disk-bytes", 1 * GiB, "disk KV tier size (bytes)"),
  sessionTtlMs: intOpt("SESSION_TTL_MS", "--session-ttl-ms", 300_000, 100, 86_400_000, "idle session lifetime before its KV is freed (ms)"),
  decodeClaimTimeoutMs: intOpt("DECODE_CLAIM_TIMEOUT_MS", "--decode-claim-timeout-ms", 30_000, 100, 86_400_000,
    "a prefilled session that no decode claims within this long (ms) is freed: its coordinator gave up on the prefill or died"),
  channelTokens: intOpt("WORKER_CHANNEL_TOKENS", "--worker-channel-tokens", 32, 1, 65536, "tokens buffered per session before its decode pauses"),
  drainTimeoutMs: intOpt("DRAIN_TIMEOUT_MS", "--drain-timeout-ms", 30_000, 0, 3_600_000, "longest SIGTERM waits for running decodes (ms)"),
  localWorkers: intOpt("LOCAL_WORKERS", "--local-workers", 1, 1, 1024, "worker processes sharing this machine's cores (set by serve)"),
  modelsDir: strOpt("MODELS_DIR", "--models-dir", "models", "folder searched for .gguf files and holding the demo model"),
  vllmMetrics: boolOpt("VLLM_METRICS", "--vllm-metrics", true,
    "also expose vLLM's metric names (vllm:…) on /metrics, for autoscalers and routers that read them"),
  ...simOptions,
};

export const serveOptions = {
  ...coordinatorOptions,
  ...workerOptions,
  // In `serve`, --port is the coordinator's; each worker listens on WORKER_PORT + i.
  workerPort: intOpt("WORKER_PORT", "--worker-port", 3001, 0, 65535, "first worker port; worker i listens on it + i (0: free ports)"),
  workers: intOpt("WORKERS", "--workers", 2, 1, 64, "local worker processes"),
  restartWorkers: boolOpt("RESTART_WORKERS", "--restart-workers", true, "restart a local worker that exits unexpectedly"),
};

/** `inference-engine pull <source>`: downloads a GGUF into the models folder. */
export const pullOptions = {
  modelsDir: workerOptions.modelsDir,
  hfEndpoint: workerOptions.hfEndpoint,
  hfToken: workerOptions.hfToken,
  sha256: { ...optionalStrOpt(undefined, "--sha256", "expected sha256 of the file (hex); verified after the download"), parse: parseSha256 } as Option<string | undefined>,
  force: boolOpt(undefined, "--force", false, "download again even when the file is already there"),
};

function parseAllowlist(raw: string): string[] {
  const parts = raw.split(",").map((s) => s.trim()).filter((s) => s !== "");
  if (parts.length === 0) throw new Error("expected one or more comma-separated addresses");
  for (const p of parts) if (!/^[A-Za-z0-9.:_-]+(\/\d{1,3})?$/.test(p)) throw new Error(`'${p}' is not an IP, CIDR or host name`);
  return parts;
}

function parseSha256(raw: string): string {
  if (!/^[0-9a-fA-F]{64}$/.test(raw)) throw new Error("expected 64 hex digits");
  return raw.toLowerCase();
}

/**
 * Checks between worker fields, after each field is valid on its own. llama.cpp asserts (aborting
 * the process) when a context has more sequences than a decode batch has tokens: every sequence
 * must be able to place at least one token per step. `auto` PARALLEL means 8 (engine-tuning.ts).
 */
export function checkWorkerConfig(c: { readonly parallel: number | "auto"; readonly batchSize: number }): void {
  const parallel = c.parallel === "auto" ? AUTO_PARALLEL : c.parallel;
  if (parallel > c.batchSize) {
    throw new ConfigError(
      `PARALLEL (--parallel) ${c.parallel === "auto" ? `auto (${parallel})` : parallel} exceeds BATCH_SIZE (--batch-size) ${c.batchSize}: ` +
        "each sequence needs a token of every batch; lower PARALLEL or raise BATCH_SIZE",
    );
  }
}

/** What PARALLEL=auto resolves to (engine-tuning.ts's chooseParallel uses this value). */
export const AUTO_PARALLEL = 8;

export type PullConfig = { readonly [K in keyof typeof pullOptions]: OptionValue<(typeof pullOptions)[K]> };
export type CoordinatorConfig = { readonly [K in keyof typeof coordinatorOptions]: OptionValue<(typeof coordinatorOptions)[K]> };
export type WorkerConfig = { readonly [K in keyof typeof workerOptions]: OptionValue<(typeof workerOptions)[K]> };
export type ServeConfig = { readonly [K in keyof typeof serveOptions]: OptionValue<(typeof serveOptions)[K]> };
type OptionValue<O> = O extends Option<infer T> ? T : never;
