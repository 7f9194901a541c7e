import { waitFor } from "../http.js";
import type { ChaosFleet } from "./chaos-fleet.js";
import { launchWave, type StreamRecord, type StreamSpec, type Wave } from "./chaos-stream.js";

/**
 * Pieces shared by the chaos scenarios: workloads, the quiet run, and waits on what the streams
 * show (which worker serves them, how many tokens they got) to time a fault.
 */
export interface ScenarioOptions {
  /** Concurrent streams of the main wave (20+ in the full suite). */
  streams: number;
  /** Run the same workload once without the fault first, for the speed comparison. */
  quiet: boolean;
}

/** A stream still open this long after it started is hung (ms): every fault here ends within seconds. */
export const STREAM_DEADLINE_MS = 90_000;
/** How long leaked sessions get to be freed after a scenario (ms). */
export const LEAK_BOUND_MS = 20_000;

/** Sim workers decoding at 50 tokens/s alone (20 ms per token, +0.5 ms per concurrent sequence). */
export const SIM_ARGS = ["--engine", "sim", "--sim-itl-ms", "20", "--sim-itl-per-sequence-ms", "0.5", "--parallel", "16"];

export function specs(prefix: string, n: number, o: { maxTokens: number; model?: string; from?: number }): StreamSpec[] {
  return Array.from({ length: n }, (_, k) => {
    const i = (o.from ?? 0) + k;
    return { requestId: `${prefix}-${i}`, model: o.model ?? "sim", prompt: `Once upon a time, story ${prefix} ${i}`, maxTokens: o.maxTokens, deadlineMs: STREAM_DEADLINE_MS };
  });
}

/** The workload run without any fault, on the same processes (its records only feed the speed column). */
export async function quietRun(fleet: ChaosFleet, o: ScenarioOptions, list: StreamSpec[]): Promise<StreamRecord[]> {
  if (!o.quiet) return [];
  const records = await launchWave(fleet.url, list).done;
  // The fault run starts from an idle fleet.
  await fleet.leaks();
  return records;
}

/** Waits until at least `n` streams served by `workerId` have each received `tokens` tokens. */
export async function waitDecodingOn(wave: Wave, workerId: string, n: number, tokens: number, timeoutMs = 60_000): Promise<void> {
  await waitFor(
    () => wave.records.filter((r) => r.workerId === workerId && r.tokens >= tokens).length >= n,
    `${n} streams of ${workerId} with ${tokens} tokens`,
    timeoutMs,
    10,
  );
}

/** Waits until every stream of the wave has received `tokens` tokens (or ended). */
export async function waitAllDecoding(wave: Wave, tokens: number, timeoutMs = 60_000): Promise<void> {
  await waitFor(() => wave.records.every((r) => r.tokens >= tokens || r.end !== "running"), `every stream with ${tokens} tokens`, timeoutMs, 10);
}

/** Streams served (at their start) by each worker. */
export function perWorker(records: StreamRecord[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const r of records) if (r.workerId !== undefined) out[r.workerId] = (out[r.workerId] ?? 0) + 1;
  return out;
}
