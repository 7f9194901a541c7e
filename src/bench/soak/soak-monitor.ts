import { request } from "undici";
import { rssBytes } from "../perf/proc-stats.js";

/**
 * Samples of one soak: per process its resident memory (from /proc) and V8 heap in use (from its
 * /metrics), and the sessions the coordinator and each worker hold, every few seconds.
 */
export interface Watched {
  name: string;
  pid: number;
  url: string;
  /** `coordinator` or `worker`: which health endpoint tells its sessions. */
  role: "coordinator" | "worker";
}

export interface ProcSample {
  rssBytes: number;
  heapUsedBytes: number | undefined;
  /** V8 heap committed, and memory outside it (Buffers, native), for telling where RSS goes. */
  heapTotalBytes: number | undefined;
  externalBytes: number | undefined;
  sessions: number;
}

export interface Sample {
  /** Seconds since the load started. */
  tS: number;
  procs: Record<string, ProcSample>;
}

export async function takeSample(watched: Watched[], tS: number): Promise<Sample> {
  const procs: Record<string, ProcSample> = {};
  await Promise.all(watched.map(async (w) => {
    const metrics = await getText(`${w.url}/metrics`);
    procs[w.name] = {
      rssBytes: safeRss(w.pid),
      heapUsedBytes: gauge(metrics, "nodejs_heap_size_used_bytes"),
      heapTotalBytes: gauge(metrics, "nodejs_heap_size_total_bytes"),
      externalBytes: gauge(metrics, "nodejs_external_memory_bytes"),
      sessions: await sessions(w),
    };
  }));
  return { tS, procs };
}

function safeRss(pid: number): number {
  try {
    return rssBytes(pid);
  } catch {
    return 0;
  }
}

async function getText(url: string): Promise<string | undefined> {
  try {
    const res = await request(url, { headersTimeout: 5000, bodyTimeout: 5000 });
    const text = await res.body.text();
    return res.statusCode === 200 ? text : undefined;
  } catch {
    return undefined;
  }
}

/** An unlabelled gauge of a Prometheus text page. */
function gauge(text: string | undefined, name: string): number | undefined {
  const m = text === undefined ? null : new RegExp(`^${name} (\\S+)$`, "m").exec(text);
  return m ? Number(m[1]) : undefined;
}

async function sessions(w: Watched): Promise<number> {
  const text = await getText(`${w.url}/${w.role}/health`);
  if (text === undefined) return -1;
  return (JSON.parse(text) as { active_sessions: number }).active_sessions;
}

/**
 * What is still held once the load stopped: sessions and KV on the coordinator; sessions, busy
 * slots and reserved KV on each worker. Polled until all are zero, at most `boundMs`.
 */
export async function heldAfter(watched: Watched[], boundMs: number): Promise<Record<string, number>> {
  const deadline = Date.now() + boundMs;
  for (;;) {
    const held: Record<string, number> = {};
    let total = 0;
    for (const w of watched) {
      const text = await getText(`${w.url}/${w.role}/health`);
      const h = text === undefined ? undefined : (JSON.parse(text) as { active_sessions: number; kv_cache_bytes?: number; kv_reserved_bytes?: number; slots?: { busy: number } });
      const n = h === undefined ? -1
        : w.role === "coordinator" ? h.active_sessions + (h.kv_cache_bytes ? 1 : 0)
          : Math.max(h.active_sessions, h.slots?.busy ?? 0) + (h.kv_reserved_bytes && h.active_sessions === 0 ? 1 : 0);
      held[w.name] = n;
      total += Math.abs(n);
    }
    if (total === 0 || Date.now() > deadline) return held;
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** Median of the samples' values of one process within [fromS, toS]. */
export function windowMedian(samples: Sample[], name: string, fromS: number, toS: number, pick: (p: ProcSample) => number | undefined): number | undefined {
  const xs = samples.filter((s) => s.tS >= fromS && s.tS <= toS).map((s) => (s.procs[name] ? pick(s.procs[name]) : undefined))
    .filter((x): x is number => x !== undefined && x > 0).sort((a, b) => a - b);
  if (xs.length === 0) return undefined;
  const m = xs.length >> 1;
  return xs.length % 2 === 1 ? xs[m] : (xs[m - 1]! + xs[m]!) / 2;
}
