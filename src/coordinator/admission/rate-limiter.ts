/**
 * Per-client token buckets for requests per minute and tokens per minute. A bucket holds at most one
 * minute's allowance and refills continuously; a request is admitted when both buckets can pay for
 * it, and otherwise gets the seconds until they can. Pure: time comes in as an argument.
 * The map of clients is bounded; the least recently seen client is forgotten first (a forgotten
 * client starts again with a full bucket, which only ever errs toward admitting).
 */
export interface RateLimits {
  /** Requests per minute per client; 0 disables. */
  requestsPerMinute: number;
  /** Tokens (prompt estimate + max_tokens) per minute per client; 0 disables. */
  tokensPerMinute: number;
}

export type RateDecision = { ok: true } | { ok: false; limit: "requests" | "tokens"; retryAfterS: number };

interface Buckets {
  requests: number;
  tokens: number;
  atMs: number;
}

const MINUTE_MS = 60_000;

export class RateLimiter {
  private readonly clients = new Map<string, Buckets>();

  constructor(
    private readonly limits: RateLimits,
    private readonly maxClients = 10_000,
  ) {}

  get enabled(): boolean {
    return this.limits.requestsPerMinute > 0 || this.limits.tokensPerMinute > 0;
  }

  /** Both buckets at once: the request and its tokens. */
  take(client: string, tokens: number, nowMs: number): RateDecision {
    const r = this.takeRequest(client, nowMs);
    return r.ok ? this.takeTokens(client, tokens, nowMs) : r;
  }

  /** The request bucket alone: runs before the body is read, so a flood costs no parsing. */
  takeRequest(client: string, nowMs: number): RateDecision {
    if (this.limits.requestsPerMinute <= 0) return { ok: true };
    const rpm = this.limits.requestsPerMinute;
    const b = this.refill(client, nowMs);
    if (b.requests < 1) return { ok: false, limit: "requests", retryAfterS: ((1 - b.requests) * MINUTE_MS) / rpm / 1000 };
    b.requests -= 1;
    return { ok: true };
  }

  /** The token bucket alone, once the prompt is known. */
  takeTokens(client: string, tokens: number, nowMs: number): RateDecision {
    if (this.limits.tokensPerMinute <= 0) return { ok: true };
    const tpm = this.limits.tokensPerMinute;
    const b = this.refill(client, nowMs);
    // A request larger than a whole minute's allowance waits for a full bucket rather than forever.
    const cost = Math.min(tokens, tpm);
    if (b.tokens < cost) return { ok: false, limit: "tokens", retryAfterS: ((cost - b.tokens) * MINUTE_MS) / tpm / 1000 };
    b.tokens -= cost;
    return { ok: true };
  }

  /** The client's buckets, refilled up to now; the map's order is recency. */
  private refill(client: string, nowMs: number): Buckets {
    const { requestsPerMinute: rpm, tokensPerMinute: tpm } = this.limits;
    let b = this.clients.get(client);
    if (b === undefined) {
      b = { requests: rpm, tokens: tpm, atMs: nowMs };
      if (this.clients.size >= this.maxClients) this.clients.delete(this.clients.keys().next().value!);
    } else {
      this.clients.delete(client); // re-inserted below
      const dt = Math.max(0, nowMs - b.atMs);
      b.requests = Math.min(rpm, b.requests + (dt * rpm) / MINUTE_MS);
      b.tokens = Math.min(tpm, b.tokens + (dt * tpm) / MINUTE_MS);
      b.atMs = nowMs;
    }
    this.clients.set(client, b);
    return b;
  }
}
