import { connect } from "node:net";
import { createRng } from "../../../src/common/rng.js";
import { ChaosFleet } from "./chaos-fleet.js";
import { SEED_ROWS, quantile, summarize, type ScenarioOutcome } from "./chaos-outcome.js";
import { launchWave, newRecord } from "./chaos-stream.js";
import { SIM_ARGS, quietRun, specs, waitAllDecoding, STREAM_DEADLINE_MS, type ScenarioOptions } from "./scenario-kit.js";

/**
 * Chaos scenarios around the coordinator and the clients: the coordinator killed and restarted,
 * a client reading one byte a second, a burst at five times the fleet's capacity, and clients
 * hanging up at random moments.
 */
const MAX_TOKENS = 150;

function simFleet(n: number, extra: string[] = [], coordinatorEnv: Record<string, string> = {}): Promise<ChaosFleet> {
  return ChaosFleet.start(Array.from({ length: n }, (_, i) => ({ id: `w${i + 1}`, args: [...SIM_ARGS, ...extra] })), coordinatorEnv);
}

/**
 * kill -9 of the coordinator mid-stream: its in-flight streams are necessarily cut. The workers must
 * free those sessions on their own, keep running (no restart), re-register with the new coordinator
 * on the same port, and new requests must succeed.
 */
export async function restartCoordinator(o: ScenarioOptions): Promise<ScenarioOutcome> {
  const key = "restart-coordinator";
  const fleet = await simFleet(2);
  try {
    const quiet = await quietRun(fleet, o, specs(`${key}-quiet`, o.streams, { maxTokens: MAX_TOKENS }));
    const pids = [...fleet.workers.values()].map((w) => w.proc.pid);
    const wave = launchWave(fleet.url, specs(key, o.streams, { maxTokens: MAX_TOKENS }));
    await waitAllDecoding(wave, 5);
    await fleet.killCoordinator();
    const records = await wave.done;
    const t0 = performance.now();
    await fleet.startCoordinator();
    await fleet.waitRoutable(2);
    const rejoinMs = performance.now() - t0;
    const leaks = await fleet.leaks();
    const after = await launchWave(fleet.url, specs(`${key}-after`, o.streams, { maxTokens: MAX_TOKENS })).done;
    const samePids = [...fleet.workers.values()].every((w, i) => w.proc.alive && w.proc.pid === pids[i]);
    const afterCompleted = after.filter((r) => r.end === "complete").length;
    return summarize({
      key, title: "kill -9 the coordinator mid-stream, start it again", seedFailure: SEED_ROWS.coordinatorRestart,
      records: [...records, ...after], quiet, failedOver: fleet.failedOver(), leaks,
      unaffected: (r) => r.spec.requestId.includes("-after-"),
      notes: [
        `in-flight streams cut: ${records.filter((r) => r.end === "cut").length} of ${records.length}`,
        `workers re-registered ${Math.round(rejoinMs)} ms after the new coordinator started; ${samePids ? "no worker restarted" : "A WORKER RESTARTED"}`,
        `${afterCompleted} of ${after.length} new streams completed (the speed column compares them)`,
      ],
      facts: { samePids, afterCompleted, afterStreams: after.length },
    });
  } finally {
    await fleet.stop();
  }
}

/**
 * One client reads a byte a second from a bulk stream (4 KiB tokens, model "bulk" on its own
 * worker, so the socket fills in moments) while 20+ others stream normally: it is dropped at the
 * write deadline (2 s here) and its worker session freed; the others are not slowed.
 */
export async function slowReader(o: ScenarioOptions): Promise<ScenarioOutcome> {
  const key = "slow-reader";
  const fleet = await ChaosFleet.start([
    { id: "w1", args: SIM_ARGS },
    { id: "w2", args: SIM_ARGS },
    { id: "bulk", args: ["--engine", "sim", "--model-id", "bulk", "--sim-itl-ms", "0", "--sim-itl-per-sequence-ms", "0", "--sim-token-chars", "4096", "--context-size", "1000000", "--sim-kv-bytes-per-token", "16"] },
  ]);
  try {
    const quiet = await quietRun(fleet, o, specs(`${key}-quiet`, o.streams, { maxTokens: MAX_TOKENS }));
    const slow = newRecord({ requestId: `${key}-slow`, model: "bulk", prompt: "a slow reader", maxTokens: 900_000, deadlineMs: STREAM_DEADLINE_MS });
    const port = Number(new URL(fleet.url).port);
    const socket = connect(port, "127.0.0.1");
    socket.on("error", () => {});
    const body = JSON.stringify({ prompt: slow.spec.prompt, model: "bulk", max_tokens: slow.spec.maxTokens });
    socket.write(`POST /coordinator/infer HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nx-request-id: ${slow.spec.requestId}\r\n\r\n${body}`);
    socket.pause();
    // One byte a second: the kernel's and Node's buffers fill, then the coordinator's.
    const reader = setInterval(() => socket.read(1), 1000);
    const bulk = fleet.worker("bulk");
    const started = await bulk.proc.waitForLog((l) => l.msg === "session.start" && l.request_id === slow.spec.requestId, 30_000, "the slow stream's session");
    const wave = launchWave(fleet.url, specs(key, o.streams, { maxTokens: MAX_TOKENS }));
    const end = await fleet.coordinator.proc.waitForLog((l) => l.msg === "stream.end" && l.request_id === slow.spec.requestId, 60_000, "the slow stream's end");
    const records = await wave.done;
    clearInterval(reader);
    socket.destroy();
    slow.end = end.termination === "write_timeout" ? "cut" : "complete";
    slow.endMs = performance.now();
    const droppedAfter = Date.parse(String(end.time)) - Date.parse(String(started.time));
    return summarize({
      key, title: "a client reading 1 byte/s among 20+ normal streams", seedFailure: SEED_ROWS.slowClient,
      records: [...records, slow], quiet, failedOver: fleet.failedOver(), leaks: await fleet.leaks(),
      unaffected: (r) => r !== slow,
      notes: [`the slow client ended by ${String(end.termination)} ${droppedAfter} ms after its session started (write deadline 2000 ms)`],
      facts: { slowTermination: String(end.termination) },
    });
  } finally {
    await fleet.stop();
  }
}

/**
 * A burst of five times the fleet's session capacity at once (2 workers × 6 sessions), with the
 * admission queue off (the seed's rule: 503 at once at capacity) or holding one capacity's worth
 * (those wait and are served as streams end; beyond it 429 with Retry-After). Refusals come from the
 * coordinator before any worker work; the admitted streams run normally.
 */
export function burst(o: ScenarioOptions): Promise<ScenarioOutcome> {
  return burstWith(o, 0);
}

export function burstQueued(o: ScenarioOptions): Promise<ScenarioOutcome> {
  return burstWith(o, 12);
}

async function burstWith(o: ScenarioOptions, queueSize: number): Promise<ScenarioOutcome> {
  const key = queueSize === 0 ? "burst" : "burst-queue";
  const perWorker = 6;
  const capacity = 2 * perWorker;
  const fleet = await simFleet(2, ["--worker-max-sessions", String(perWorker)], { QUEUE_SIZE: String(queueSize) });
  try {
    const quiet = await quietRun(fleet, o, specs(`${key}-quiet`, capacity, { maxTokens: MAX_TOKENS }));
    const records = await launchWave(fleet.url, specs(key, 5 * capacity, { maxTokens: MAX_TOKENS })).done;
    const rejected = records.filter((r) => r.end === "rejected");
    const rejectMs = rejected.map((r) => r.endMs! - r.startMs);
    const statuses = [...new Set(rejected.map((r) => `${r.status} ${r.errorCode}`))];
    const queue = queueSize === 0 ? "no admission queue" : `an admission queue of ${queueSize}`;
    return summarize({
      key, title: `a burst of ${5 * capacity} streams at 5× the fleet's capacity (${capacity}), ${queue}`, seedFailure: SEED_ROWS.overload,
      records, quiet, failedOver: fleet.failedOver(), leaks: await fleet.leaks(), unaffected: () => true,
      notes: [
        `refusals: ${statuses.join(", ") || "none"}, answered in p50 ${fmtMs(quantile(rejectMs, 0.5))}, max ${fmtMs(quantile(rejectMs, 1))}`,
      ],
      facts: { statuses: [...new Set(rejected.map((r) => r.status))].sort().join(","), capacity, queueSize },
    });
  } finally {
    await fleet.stop();
  }
}

/** A third of the clients hang up at random moments: before the first token, or after a few tokens. */
export async function randomDisconnects(o: ScenarioOptions): Promise<ScenarioOutcome> {
  const key = "disconnects";
  const fleet = await simFleet(3);
  try {
    const quiet = await quietRun(fleet, o, specs(`${key}-quiet`, o.streams, { maxTokens: MAX_TOKENS }));
    const rng = createRng(8);
    const list = specs(key, o.streams, { maxTokens: MAX_TOKENS }).map((s, i) => {
      if (i % 3 !== 0) return s;
      // Half of them during prefill or before the first token, half mid-stream.
      return i % 2 === 0 ? { ...s, abortAfterMs: Math.floor(rng.next() * 30) } : { ...s, abortAfterTokens: 1 + Math.floor(rng.next() * 100) };
    });
    const records = await launchWave(fleet.url, list).done;
    return summarize({
      key, title: "random client disconnects (a third of 20+ streams)", seedFailure: undefined,
      records, quiet, failedOver: fleet.failedOver(), leaks: await fleet.leaks(),
      unaffected: (r) => r.spec.abortAfterMs === undefined && r.spec.abortAfterTokens === undefined,
      notes: [`${list.filter((s) => s.abortAfterMs !== undefined).length} hung up within 30 ms of sending, ${list.filter((s) => s.abortAfterTokens !== undefined).length} after 1–100 tokens`],
    });
  } finally {
    await fleet.stop();
  }
}

const fmtMs = (x: number | undefined) => (x === undefined ? "–" : `${Math.round(x)} ms`);
