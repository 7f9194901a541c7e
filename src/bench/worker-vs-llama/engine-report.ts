/**
 * The worker-vs-llama-server table: medians per model and stream count, the ratios the engine is
 * judged by (tokens/s: worker / llama-server, higher is better; TTFT: worker / llama-server,
 * lower is better), rendered as the Markdown table of the performance suite's section 7.
 *
 * Side by side, a ratio is the median of the per-repetition ratios: repetition r of the worker and
 * of llama-server ran back to back, so they saw much the same load from the rest of a shared
 * machine, which a ratio of two medians taken minutes apart does not ensure.
 */
export interface Cell {
  model: string;
  streams: number;
  workerTps: number[];
  workerTtftMs: number[];
  /** Measured side by side; absent when compared against perf-anchor.md instead. */
  serverTps?: number[];
  serverTtftMs?: number[];
  /** perf-anchor.md's llama-server range, when llama-server was not run. */
  anchor?: { tps: [number, number]; ttftMs: [number, number] };
}

/** llama-server in perf-anchor.md (2 threads, 2-vCPU machine): tokens/s and TTFT ranges. */
export const ANCHOR: Record<string, Record<number, { tps: [number, number]; ttftMs: [number, number] }>> = {
  stories260K: { 1: { tps: [1433, 1654], ttftMs: [5, 5] }, 4: { tps: [2097, 2130], ttftMs: [11, 16] } },
  tiny15m: { 1: { tps: [393, 396], ttftMs: [10, 10] }, 4: { tps: [887, 903], ttftMs: [23, 27] } },
  small110m: { 1: { tps: [74, 79], ttftMs: [50, 60] }, 4: { tps: [129, 144], ttftMs: [153, 164] } },
};

export function median(xs: readonly number[]): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

const mid = (r: [number, number]) => (r[0] + r[1]) / 2;

export interface Ratios {
  workerTps: number;
  workerTtftMs: number;
  refTps: number | undefined;
  refTtftMs: number | undefined;
  tpsRatio: number | undefined;
  ttftRatio: number | undefined;
}

/** Median of a[r] / b[r] over the repetitions both have. */
export function pairedRatio(a: readonly number[], b: readonly number[]): number {
  const n = Math.min(a.length, b.length);
  return median(Array.from({ length: n }, (_, r) => a[r]! / b[r]!));
}

export function ratios(c: Cell): Ratios {
  const workerTps = median(c.workerTps);
  const workerTtftMs = median(c.workerTtftMs);
  const refTps = c.serverTps !== undefined ? median(c.serverTps) : c.anchor !== undefined ? mid(c.anchor.tps) : undefined;
  const refTtftMs = c.serverTtftMs !== undefined ? median(c.serverTtftMs) : c.anchor !== undefined ? mid(c.anchor.ttftMs) : undefined;
  if (c.serverTps !== undefined && c.serverTtftMs !== undefined) {
    return {
      workerTps, workerTtftMs, refTps, refTtftMs,
      tpsRatio: pairedRatio(c.workerTps, c.serverTps),
      ttftRatio: pairedRatio(c.workerTtftMs, c.serverTtftMs),
    };
  }
  return {
    workerTps, workerTtftMs, refTps, refTtftMs,
    tpsRatio: refTps !== undefined ? workerTps / refTps : undefined,
    ttftRatio: refTtftMs !== undefined ? workerTtftMs / refTtftMs : undefined,
  };
}

/** The goal: ≥ 0.9× llama-server's tokens/s at 1–4 streams, ≥ 1.0× at 8+, TTFT ≤ 1.2×. */
export function meetsGoal(c: Cell): boolean | undefined {
  const r = ratios(c);
  if (r.tpsRatio === undefined || r.ttftRatio === undefined) return undefined;
  return r.tpsRatio >= (c.streams >= 8 ? 1.0 : 0.9) && r.ttftRatio <= 1.2;
}

const f0 = (x: number | undefined) => (x === undefined || Number.isNaN(x) ? "—" : x >= 100 ? x.toFixed(0) : x.toFixed(1));
const f2 = (x: number | undefined) => (x === undefined || Number.isNaN(x) ? "—" : `${x.toFixed(2)}×`);

export function renderTable(cells: readonly Cell[]): string {
  const rows = [
    "| model | streams | worker tok/s | llama-server tok/s | tok/s ratio | worker TTFT ms | llama-server TTFT ms | TTFT ratio | goal |",
    "|---|---:|---:|---:|---:|---:|---:|---:|:---:|",
  ];
  for (const c of cells) {
    const r = ratios(c);
    const ref = c.serverTps !== undefined ? f0(r.refTps) : c.anchor !== undefined ? `${c.anchor.tps[0]}–${c.anchor.tps[1]} (anchor)` : "—";
    const refTtft = c.serverTtftMs !== undefined ? f0(r.refTtftMs) : c.anchor !== undefined ? `${c.anchor.ttftMs[0]}–${c.anchor.ttftMs[1]} (anchor)` : "—";
    const goal = meetsGoal(c);
    rows.push(
      `| ${c.model} | ${c.streams} | ${f0(r.workerTps)} | ${ref} | ${f2(r.tpsRatio)} | ${f0(r.workerTtftMs)} | ${refTtft} | ${f2(r.ttftRatio)} | ${goal === undefined ? "—" : goal ? "yes" : "no"} |`,
    );
  }
  return rows.join("\n");
}
