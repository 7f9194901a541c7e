/**
 * The fleet's client host: runs conversations of OpenAI chat streams against coordinators (a
 * random one per request: clients spread over coordinators by any balancer) and prints one JSON
 * line of counts and timings. Every request has a deadline (`hungMs`); the run has a duration.
 * Usage: node fleet-load.js '{"targets":[...],"concurrency":8,"durationMs":10000,...}'
 * Outcomes: completed (finish_reason seen and [DONE]), rejected (429/503 before the stream),
 * errored (any other status, a connection error, an error event, a stream cut short), hung (no end
 * within hungMs). `errored_after_start` counts errored requests whose response had begun (status 200).
 */
interface LoadSpec {
  targets: string[];
  concurrency: number;
  durationMs: number;
  turns?: number;
  maxTokens?: number;
  hungMs?: number;
  model?: string;
  /** Send x-session-id (the conversation) as the project's clients do for multi-turn chats. */
  sessionHeader?: boolean;
}

interface Outcome {
  kind: "completed" | "rejected" | "errored" | "hung";
  /** Refused inside the stream after queueing (see CAPACITY_CODES). */
  inStream?: boolean;
  status: number;
  turn: number;
  target?: string;
  startedStreaming: boolean;
  ttftMs?: number;
  tokens: number;
  streamMs?: number;
  cached?: number;
  prompt?: number;
  worker?: string;
  /** x-route-decision (why this worker), kept to explain a later turn's cache miss. */
  decision?: string;
  reason?: string;
}

const spec = JSON.parse(process.argv[2]!) as LoadSpec;
/**
 * Capacity refusals (the codes of 429/503). A streaming request that waited in a coordinator's
 * admission queue has its 200 and queue comments already; its refusal then travels in the stream as
 * an error event with one of these codes before any token: the client's 503, not an error.
 */
const CAPACITY_CODES = new Set(["no_workers", "system_sessions_full", "system_kv_cache_full", "worker_sessions_full", "worker_kv_cache_full",
  "session_kv_limit", "draining", "queue_timeout", "overloaded", "queue_full", "rate_limited", "too_many_streams", "too_many_queued"]);
const turns = spec.turns ?? 1;
const maxTokens = spec.maxTokens ?? 16;
const hungMs = spec.hungMs ?? 30_000;
const outcomes: Outcome[] = [];
const t0 = Date.now();

async function one(target: string, messages: { role: string; content: string }[], turn: number, sessionId: string): Promise<{ o: Outcome; text: string }> {
  const ac = new AbortController();
  const timer = setTimeout(() => ac.abort(), hungMs);
  const sent = Date.now();
  const o: Outcome = { kind: "errored", status: 0, turn, target, startedStreaming: false, tokens: 0 };
  let text = "";
  try {
    const res = await fetch(`${target}/v1/chat/completions`, {
      method: "POST", signal: ac.signal, headers: { "content-type": "application/json", ...(spec.sessionHeader ? { "x-session-id": sessionId } : {}) },
      body: JSON.stringify({ model: spec.model ?? "m", messages, max_tokens: maxTokens, stream: true, stream_options: { include_usage: true } }),
    });
    o.status = res.status;
    o.startedStreaming = res.status === 200; // the response began: a cut now is a cut stream
    o.worker = res.headers.get("x-worker-id") ?? undefined;
    o.decision = res.headers.get("x-route-decision") ?? undefined;
    if (res.status !== 200) {
      const body = await res.text();
      o.kind = res.status === 429 || res.status === 503 ? "rejected" : "errored";
      o.reason = body.slice(0, 200);
      return { o, text };
    }
    let buf = "";
    let finished = false;
    let done = false;
    let firstMs: number | undefined;
    const dec = new TextDecoder();
    for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
      buf += dec.decode(chunk, { stream: true });
      let i: number;
      while ((i = buf.indexOf("\n\n")) >= 0) {
        const ev = buf.slice(0, i);
        buf = buf.slice(i + 2);
        const data = ev.split("\n").filter((l) => l.startsWith("data: ")).map((l) => l.slice(6)).join("");
        if (data === "[DONE]") { done = true; continue; }
        if (data === "") continue;
        const j = JSON.parse(data) as any;
        if (j.error) {
          o.reason = JSON.stringify(j.error).slice(0, 200);
          if (firstMs === undefined && CAPACITY_CODES.has(j.error.code)) o.inStream = true;
          continue;
        }
        const c = j.choices?.[0];
        if (c?.delta?.content) {
          if (firstMs === undefined) { firstMs = Date.now(); o.ttftMs = firstMs - sent; }
          o.tokens++;
          text += c.delta.content;
        }
        if (c?.finish_reason) finished = true;
        if (j.usage) { o.cached = j.usage.prompt_tokens_details?.cached_tokens; o.prompt = j.usage.prompt_tokens; }
      }
    }
    if (firstMs !== undefined) o.streamMs = Date.now() - firstMs;
    o.kind = finished && done && o.reason === undefined ? "completed" : o.inStream ? "rejected" : "errored";
  } catch (err) {
    o.kind = ac.signal.aborted ? "hung" : "errored";
    o.reason ??= String((err as Error).cause ?? err).slice(0, 200);
  } finally {
    clearTimeout(timer);
  }
  return { o, text };
}

async function client(id: number): Promise<void> {
  let conv = 0;
  while (Date.now() - t0 < spec.durationMs) {
    conv++;
    const messages: { role: string; content: string }[] = [{ role: "system", content: `client ${id} conversation ${conv}: a long shared system prompt that every turn repeats, so later turns can reuse it from the cache` }];
    for (let turn = 1; turn <= turns && Date.now() - t0 < spec.durationMs; turn++) {
      messages.push({ role: "user", content: `turn ${turn} of conversation ${conv} by client ${id}: tell me more` });
      const target = spec.targets[Math.floor(Math.random() * spec.targets.length)]!;
      const { o, text } = await one(target, messages, turn, `c${id}-${conv}-${process.pid}`);
      outcomes.push(o);
      if (o.kind !== "completed") break; // a conversation ends at its first failure
      messages.push({ role: "assistant", content: text });
    }
  }
}

function pct(xs: number[], p: number): number | null {
  if (xs.length === 0) return null;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
}

await Promise.all(Array.from({ length: spec.concurrency }, (_, i) => client(i)));
const by = (k: Outcome["kind"]) => outcomes.filter((o) => o.kind === k);
const done = by("completed");
const later = done.filter((o) => o.turn >= 2 && o.prompt !== undefined);
const perWorker: Record<string, { n: number; ttftP50: number | null; tokPerS: number | null }> = {};
for (const w of new Set(done.map((o) => o.worker ?? "?"))) {
  const mine = done.filter((o) => (o.worker ?? "?") === w);
  const rates = mine.filter((o) => o.streamMs && o.tokens > 1).map((o) => ((o.tokens - 1) * 1000) / o.streamMs!);
  perWorker[w] = { n: mine.length, ttftP50: pct(mine.map((o) => o.ttftMs!).filter((x) => x !== undefined), 50), tokPerS: pct(rates, 50) };
}
console.log(JSON.stringify({
  requests: outcomes.length,
  completed: done.length,
  rejected: by("rejected").length,
  errored: by("errored").length,
  errored_after_start: by("errored").filter((o) => o.startedStreaming).length,
  hung: by("hung").length,
  ttft_p50_ms: pct(done.map((o) => o.ttftMs!).filter((x) => x !== undefined), 50),
  ttft_p99_ms: pct(done.map((o) => o.ttftMs!).filter((x) => x !== undefined), 99),
  later_turn_ttft_p50_ms: pct(later.map((o) => o.ttftMs!).filter((x) => x !== undefined), 50),
  later_turn_hit_ratio: later.length ? later.reduce((s, o) => s + (o.cached ?? 0), 0) / Math.max(1, later.reduce((s, o) => s + (o.prompt ?? 0), 0)) : null,
  later_turns: later.length,
  // Turns ≥ 2 that reused nothing: the route decision says whether the index knew the prefix.
  later_turn_misses: later.filter((o) => !o.cached).length,
  miss_samples: later.filter((o) => !o.cached).slice(0, 4).map((o) => `turn ${o.turn} target ${o.target ?? "?"}: ${o.decision ?? ""}`),
  rejected_statuses: [...new Set(by("rejected").map((o) => o.status))],
  rejected_in_stream: by("rejected").filter((o) => o.inStream).length,
  error_samples: by("errored").slice(0, 3).map((o) => `${o.status} ${o.reason ?? ""}`),
  rejected_samples: [...new Set(by("rejected").map((o) => `${o.status} ${/"reason":"([a-z_]+)"|"code":"([a-z_]+)"/.exec(o.reason ?? "")?.slice(1).find(Boolean) ?? (o.reason ?? "").slice(0, 60)}`))].slice(0, 4),
  per_worker: perWorker,
  wall_ms: Date.now() - t0,
}));
