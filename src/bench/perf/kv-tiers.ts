import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { BenchReport } from "../report.js";
import { runBench } from "../run-bench.js";
import { benchModels, defaultBenchCacheDir, ensureBenchModel } from "../worker-vs-llama/bench-models.js";
import { startQuiet, waitRoutable, type Served } from "./fleet.js";
import { table, verdict } from "./markdown.js";
import { chatBenchConfig } from "./measure.js";
import type { SectionResult, SuiteMode } from "./suite-types.js";

/**
 * 9. KV tiers on a multi-turn chat with more conversations than slots: 24 conversations × 6 turns
 * over 2 workers × 4 slots (a shared system prompt, a growing history), on the 15M- and 110M-class
 * models our GGUF writer makes, tiers off vs host tier vs host + disk tier (the host tier then
 * small enough that most conversations go on to disk). Reported: turn ≥ 2 TTFT p50/p99, the
 * prefix-hit ratio of turns ≥ 2, and the workers' measured prefill and restore costs per token
 * (their calibration, followed by every prefill and restore; /worker/health kv_tiers). Then drain
 * with KV transfer vs re-prefill: a conversation's worker drains, and its next turn's TTFT on the
 * adopter is timed. Goal: turn ≥ 2 TTFT p50 with tiers at least 3× better than tiers off.
 */
const ROOT = fileURLToPath(new URL("../../../../", import.meta.url));
const CHAT = { users: 24, turns: 6, concurrency: 8, systemPromptTokens: 80, userTokens: 16, outputTokens: 12 };
const QUICK = { users: 4, turns: 2, concurrency: 4, systemPromptTokens: 20, userTokens: 8, outputTokens: 4 };
/** Adopt bodies carry the KV (a 110M-class state is about 36 KiB per token). */
const BODY = "256MiB";

interface Variant {
  name: string;
  env(dir: string): Record<string, string>;
  /** The coordinator's (KV_MOVE on: a turn whose worker is full moves its KV to the worker picked instead). */
  coordinatorEnv?: Record<string, string>;
}
const VARIANTS: Variant[] = [
  { name: "tiers off", env: () => ({}) },
  { name: "host", env: () => ({ KV_HOST_BYTES: "2GiB" }) },
  { name: "host + move", env: () => ({ KV_HOST_BYTES: "2GiB" }), coordinatorEnv: { KV_MOVE: "true" } },
  { name: "host + disk", env: (dir) => ({ KV_HOST_BYTES: "32MiB", KV_DISK_DIR: dir, KV_DISK_BYTES: "4GiB" }) },
];

async function startFleet(model: string, env: Record<string, string>, coordinatorEnv: Record<string, string> = {}) {
  const coordinator = await startQuiet(["coordinator"], "/coordinator/health", { HEARTBEAT_INTERVAL_MS: "250", ...coordinatorEnv });
  const workers: Served[] = await Promise.all(["w1", "w2"].map((id) =>
    startQuiet(["worker", "--model", model, "--worker-id", id], "/worker/health", {
      COORDINATOR_URL: coordinator.url, HEARTBEAT_INTERVAL_MS: "250", THREADS: "1", PARALLEL: "4", CONTEXT_SIZE: "2048", MODEL_ID: "m",
      MAX_BODY_BYTES: BODY, SESSION_TTL_MS: "600000", ...env,
    }, [])));
  await waitRoutable(coordinator.url, 2, 120_000);
  return { coordinator, workers, stop: async () => void (await Promise.all([...workers.map((w) => w.stop()), coordinator.stop()])) };
}

async function health(url: string): Promise<any> {
  return (await fetch(`${url}/worker/health`)).json();
}

/** ms to the first content chunk of a streamed chat turn. */
async function streamedTtft(url: string, conversation: string, messages: unknown[]): Promise<{ ms: number; text: string }> {
  const t0 = performance.now();
  const res = await fetch(`${url}/v1/chat/completions`, {
    method: "POST", headers: { "content-type": "application/json", "x-session-id": conversation },
    body: JSON.stringify({ model: "m", messages, max_tokens: 16, temperature: 0, stream: true }),
  });
  let first = NaN;
  let text = "";
  const dec = new TextDecoder();
  for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
    const s = dec.decode(chunk);
    for (const m of s.matchAll(/"content":"((?:[^"\\]|\\.)*)"/g)) {
      if (Number.isNaN(first) && m[1]!.length > 0) first = performance.now() - t0;
      text += m[1];
    }
  }
  return { ms: first, text };
}

/** A conversation of 4 turns on one worker, that worker drained, the 5th turn's TTFT on the adopter. */
async function drainOnce(model: string, transfer: boolean, words: number): Promise<{ ms: number; cached: number }> {
  const fleet = await startFleet(model, transfer ? {} : { MAX_BODY_BYTES: "64KiB" });
  try {
    const conv = `drain-${transfer ? "kv" : "prefill"}`;
    const say = (i: number) => Array.from({ length: words }, (_, j) => `word${(i * 31 + j) % 97}`).join(" ");
    const messages: { role: string; content: string }[] = [{ role: "system", content: say(0) }];
    let holder = "";
    for (let t = 1; t <= 4; t++) {
      messages.push({ role: "user", content: say(t) });
      const res = await fetch(`${fleet.coordinator.url}/v1/chat/completions`, {
        method: "POST", headers: { "content-type": "application/json", "x-session-id": conv },
        body: JSON.stringify({ model: "m", messages, max_tokens: 16, temperature: 0 }),
      });
      holder = res.headers.get("x-worker-id") ?? holder;
      const body = (await res.json()) as { choices: { message: { content: string } }[] };
      messages.push({ role: "assistant", content: body.choices[0]!.message.content });
    }
    const d = await fetch(`${fleet.coordinator.url}/coordinator/workers/${holder}/drain`, { method: "POST", headers: { "content-type": "application/json" }, body: "{}" });
    await d.text();
    messages.push({ role: "user", content: say(5) });
    const r = await streamedTtft(fleet.coordinator.url, conv, messages);
    // Both variants adopt the conversation (cached tokens alike); they differ in what that cost.
    const cached = (await Promise.all(fleet.workers.map((x) => health(x.url)))).reduce((a, h) => a + (h.cached_sequences as number), 0);
    return { ms: r.ms, cached };
  } finally {
    await fleet.stop();
  }
}

export async function kvTiers(mode: SuiteMode): Promise<SectionResult> {
  const w = mode.quick ? QUICK : CHAT;
  const models = benchModels(join(ROOT, "../shared/models"), defaultBenchCacheDir()).filter((m) => m.name === "tiny15m" || m.name === "small110m");
  const rows: (string | number)[][] = [];
  const costRows: (string | number)[][] = [];
  const drainRows: (string | number)[][] = [];
  const data: unknown[] = [];
  const goals: (string | number)[][] = [];
  for (const m of models) {
    await ensureBenchModel(m);
    const byVariant = new Map<string, BenchReport>();
    for (const v of VARIANTS) {
      const dir = mkdtempSync(join(tmpdir(), "kv-tier-bench-"));
      mode.log(`kv tiers: ${m.name}, ${v.name}`);
      const fleet = await startFleet(m.path, v.env(dir), v.coordinatorEnv);
      try {
        const report = await runBench(chatBenchConfig(fleet.coordinator.url, "m", w, w.concurrency, 1200), { quietProgress: true });
        byVariant.set(v.name, report);
        const hs = await Promise.all(fleet.workers.map((x) => health(x.url)));
        const t = hs.map((h) => h.kv_tiers).filter((x) => x !== undefined);
        const avg = (f: (x: any) => number) => (t.length === 0 ? NaN : t.reduce((a, x) => a + f(x), 0) / t.length);
        const sum = (f: (x: any) => number) => t.reduce((a, x) => a + f(x), 0);
        const lt = report.multiTurn?.laterTurns;
        rows.push([m.name, v.name, lt?.ttft?.p50 ?? NaN, lt?.ttft?.p99 ?? NaN, pct(lt?.hitRatio), sum((x) => x.restored_host), sum((x) => x.restored_disk),
          report.requests.failed + report.requests.rejected]);
        if (t.length > 0) {
          costRows.push([m.name, v.name, avg((x) => x.prefill_ms_per_token).toFixed(3), avg((x) => x.restore_ms_per_token.host).toFixed(4),
            avg((x) => x.restore_ms_per_token.disk).toFixed(4), avg((x) => x.weight_host).toFixed(2), avg((x) => x.weight_disk).toFixed(2)]);
        }
        data.push({ model: m.name, variant: v.name, laterTurns: lt, tiers: t, report });
      } finally {
        await fleet.stop();
        rmSync(dir, { recursive: true, force: true });
      }
    }
    const off = byVariant.get("tiers off")?.multiTurn?.laterTurns.ttft?.p50 ?? NaN;
    for (const v of ["host", "host + move", "host + disk"]) {
      const x = off / (byVariant.get(v)?.multiTurn?.laterTurns.ttft?.p50 ?? NaN);
      goals.push([`${m.name}: ${v} turn ≥ 2 TTFT p50 ≥ 3× better than tiers off`, `${x.toFixed(2)}×`, verdict(x >= 3)]);
    }
    const words = mode.quick ? 10 : 60;
    const kv = await drainOnce(m.path, true, words);
    const prefill = await drainOnce(m.path, false, words);
    drainRows.push([m.name, kv.ms, prefill.ms, (prefill.ms / kv.ms).toFixed(2)]);
    data.push({ model: m.name, drain: { transfer: kv, reprefill: prefill } });
  }
  const md = [
    `2 workers (THREADS=1, PARALLEL=4, CONTEXT_SIZE=2048) and a coordinator (cache-aware profile) per run, fresh processes. ` +
      `Workload: ${w.users} conversations × ${w.turns} turns over the OpenAI chat API, ${w.concurrency} in flight, shared system prompt of ${w.systemPromptTokens} words, ` +
      `user messages of ${w.userTokens} words, ${w.outputTokens}-token greedy answers. One repetition (the machine is shared with other jobs: its load moves these numbers). ` +
      `Variants: tiers off; host tier (KV_HOST_BYTES=2GiB), without and with the coordinator's KV moves (KV_MOVE=true: a turn whose worker is full moves its KV to the other); ` +
      `host + disk (KV_HOST_BYTES=32MiB, KV_DISK_BYTES=4GiB in a temp folder).`,
    "",
    table(["model", "tiers", "turn ≥ 2 TTFT p50 (ms)", "turn ≥ 2 TTFT p99 (ms)", "turn ≥ 2 hit ratio", "restores (host)", "restores (disk)", "not completed"], rows),
    "",
    "Measured costs per token (workers' calibration at start, then a running mean of every prefill and restore; averaged over the 2 workers), " +
      "and the weight of a tier hit against a slot hit (1 − restore/prefill):",
    "",
    table(["model", "tiers", "prefill ms/token", "restore host ms/token", "restore disk ms/token", "host weight", "disk weight"], costRows),
    "",
    "Drain with KV transfer vs re-prefill: a conversation of 4 turns, its worker drained through the coordinator, the 5th turn's TTFT on the adopter " +
      "(re-prefill: the holder's MAX_BODY_BYTES of 64 KiB keeps the KV out of the drain listing, so the adopter prefills as before):",
    "",
    table(["model", "TTFT after drain, KV transfer (ms)", "TTFT after drain, re-prefill (ms)", "re-prefill ÷ transfer"], drainRows),
    "",
    table(["target", "measured", ""], goals),
  ].join("\n");
  return { title: "9. KV tiers: conversations outlive their slot", markdown: md, data };
}

const pct = (x: number | undefined) => (x !== undefined && Number.isFinite(x) ? `${(x * 100).toFixed(1)}%` : "—");
