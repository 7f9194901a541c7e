/**
 * Samples the fleet's load from inside the client host every `everyMs` for `durationMs`: each
 * worker's active sessions against its own limit, and the sessions all coordinators have admitted
 * against the fleet's capacity (the sum of the workers' limits). Prints one JSON line: the worst
 * worker excess (0: no worker above its limits), the largest fleet over-admission and for how
 * long the coordinators together held more sessions than the fleet has.
 * Usage: node fleet-sampler.js '{"workers":[url...],"coordinators":[url...],"everyMs":50,"durationMs":10000}'
 */
interface Spec { workers: string[]; coordinators: string[]; everyMs: number; durationMs: number; token: string }
const spec = JSON.parse(process.argv[2]!) as Spec;

async function json(url: string): Promise<any> {
  try {
    const r = await fetch(url, { signal: AbortSignal.timeout(1000), headers: { authorization: `Bearer ${spec.token}` } });
    if (r.status !== 200) return undefined;
    return await r.json();
  } catch {
    return undefined;
  }
}

let maxWorkerExcess = 0;
let maxOverAdmit = 0;
let overMs = 0;
let samples = 0;
let last = Date.now();
let peakAdmitted = 0;
let capacity = 0;
const t0 = Date.now();
while (Date.now() - t0 < spec.durationMs) {
  const started = Date.now();
  const ws = await Promise.all(spec.workers.map((u) => json(`${u}/worker/health`)));
  const cs = await Promise.all(spec.coordinators.map((u) => json(`${u}/coordinator/health`)));
  capacity = ws.reduce((s, w) => s + (w?.limits?.max_sessions ?? 0), 0);
  for (const w of ws) if (w) maxWorkerExcess = Math.max(maxWorkerExcess, w.active_sessions - w.limits.max_sessions);
  const admitted = cs.reduce((s, c) => s + (c?.active_sessions ?? 0), 0);
  peakAdmitted = Math.max(peakAdmitted, admitted);
  // A sample stands for the time since the previous one (sampling slows on a busy machine).
  const now = Date.now();
  if (capacity > 0 && admitted > capacity) {
    maxOverAdmit = Math.max(maxOverAdmit, admitted - capacity);
    overMs += now - last;
  }
  last = now;
  samples++;
  await new Promise((r) => setTimeout(r, Math.max(0, spec.everyMs - (Date.now() - started))));
}
console.log(JSON.stringify({ samples, sampled_ms: Date.now() - t0, fleet_capacity: capacity, peak_admitted: peakAdmitted, max_worker_excess: maxWorkerExcess, max_over_admit: maxOverAdmit, over_admit_ms: overMs }));
