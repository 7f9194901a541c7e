/**
 * Fingerprints of poison requests: requests on which two workers died (a query of death). An
 * identical request is refused at once for `ttlMs` (POISON_TTL_MS) instead of taking down more
 * workers. Bounded: at most `maxEntries` (POISON_MAX_ENTRIES); when full, the oldest entry goes.
 * Time is passed in (ms, monotonic), so the store is pure and testable.
 */
export class PoisonStore {
  /** Fingerprint → expiry (ms); Map keeps insertion order, so the first key is the oldest. */
  private readonly entries = new Map<string, number>();

  constructor(private readonly o: { ttlMs: number; maxEntries: number }) {}

  get size(): number {
    return this.entries.size;
  }

  /** Whether `fingerprint` is remembered and not expired at `nowMs` (an expired one is forgotten). */
  has(fingerprint: string, nowMs: number): boolean {
    const expires = this.entries.get(fingerprint);
    if (expires === undefined) return false;
    if (expires > nowMs) return true;
    this.entries.delete(fingerprint);
    return false;
  }

  /** Remembers `fingerprint` until nowMs + ttl; a TTL of 0 remembers nothing. */
  remember(fingerprint: string, nowMs: number): void {
    if (this.o.ttlMs <= 0) return;
    this.entries.delete(fingerprint);
    this.entries.set(fingerprint, nowMs + this.o.ttlMs);
    while (this.entries.size > this.o.maxEntries) this.entries.delete(this.entries.keys().next().value!);
  }
}
