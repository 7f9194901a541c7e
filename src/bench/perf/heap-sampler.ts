/**
 * The V8 heap of a server of ours, read from its `/metrics` (prom-client's default process metrics:
 * `nodejs_heap_size_used_bytes`), for the relay section's memory per open stream. Used heap includes
 * young-generation garbage not yet collected, so a peak over a run is an upper bound of what the
 * open streams hold. Scrapes are seconds apart: each costs the server a millisecond or two of CPU.
 */
export function promGauge(text: string, name: string): number | undefined {
  for (const line of text.split("\n")) {
    if (!line.startsWith(name)) continue;
    const rest = line.slice(name.length);
    // The metric itself (optionally labelled), not one whose name merely starts with `name`.
    if (rest[0] !== " " && rest[0] !== "{") continue;
    const sample = rest[0] === "{" ? rest.slice(rest.indexOf("}") + 1) : rest;
    // `value [timestamp]`
    const value = Number(sample.trim().split(" ")[0]);
    if (Number.isFinite(value)) return value;
  }
  return undefined;
}

export async function heapUsedBytes(baseUrl: string): Promise<number | undefined> {
  try {
    const res = await fetch(`${baseUrl}/metrics`);
    if (res.status !== 200) {
      await res.body?.cancel();
      return undefined;
    }
    return promGauge(await res.text(), "nodejs_heap_size_used_bytes");
  } catch {
    return undefined;
  }
}

/** Scrapes `baseUrl`'s used heap every `everyMs` until stopped; keeps the peak (bytes). */
export class HeapSampler {
  private peak: number | undefined;
  private readonly timer: NodeJS.Timeout;
  private pending: Promise<void> = Promise.resolve();

  constructor(private readonly baseUrl: string, everyMs = 1000) {
    this.timer = setInterval(() => this.sample(), everyMs);
  }

  private sample(): void {
    // One scrape at a time: a server slow to answer is not asked twice.
    this.pending = this.pending.then(async () => {
      const b = await heapUsedBytes(this.baseUrl);
      if (b !== undefined) this.peak = Math.max(this.peak ?? 0, b);
    });
  }

  async stop(): Promise<number | undefined> {
    clearInterval(this.timer);
    await this.pending;
    return this.peak;
  }
}
