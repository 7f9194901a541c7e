import type { Rng } from "../common/rng.js";

/**
 * Arrival times as `vllm bench serve` draws them: gaps from a gamma distribution with shape
 * `burstiness` and mean 1/rate. burstiness 1 is a Poisson process; below 1 arrivals come in bursts,
 * above 1 they are more evenly spaced. Gamma draws: Marsaglia–Tsang (shape ≥ 1), with the usual
 * u^(1/shape) boost below 1; normals by Box–Muller.
 */
export function gammaGapMs(rng: Rng, ratePerS: number, burstiness: number): number {
  const theta = 1000 / (ratePerS * burstiness);
  return gamma(rng, burstiness) * theta;
}

function gamma(rng: Rng, shape: number): number {
  if (shape < 1) return gamma(rng, shape + 1) * Math.pow(1 - rng.next(), 1 / shape);
  const d = shape - 1 / 3;
  const c = 1 / Math.sqrt(9 * d);
  for (;;) {
    let x: number;
    let v: number;
    do {
      x = normal(rng);
      v = 1 + c * x;
    } while (v <= 0);
    v = v * v * v;
    const u = 1 - rng.next();
    if (Math.log(u) < 0.5 * x * x + d - d * v + d * Math.log(v)) return d * v;
  }
}

function normal(rng: Rng): number {
  const u1 = 1 - rng.next();
  const u2 = rng.next();
  return Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * u2);
}
