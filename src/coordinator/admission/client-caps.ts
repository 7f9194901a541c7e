import { ServingError } from "../../protocol/serving-error.js";

/**
 * Per-client caps (a client is an API key's id, or an address without keys): requests in flight
 * (MAX_STREAMS_PER_KEY, from before the body is read to the end of the answer, queued ones
 * included) and requests waiting in the admission queue (MAX_QUEUED_PER_KEY). Taking a place
 * returns a lease whose `release()` is idempotent (call it in `finally`); 0 turns a cap off.
 * Counts live in one map per cap and a client's entry goes when its count reaches 0, so the maps
 * hold only clients with something in flight.
 */
export interface ClientCapLimits {
  maxStreams: number;
  maxQueued: number;
}

export interface CapLease {
  release(): void;
}

const NO_LEASE: CapLease = { release() {} };

export class ClientCaps {
  private readonly streams = new Map<string, number>();
  private readonly queued = new Map<string, number>();

  constructor(private readonly limits: ClientCapLimits) {}

  /** Whether a client's queued requests are capped (MAX_QUEUED_PER_KEY > 0). */
  get queueCapped(): boolean {
    return this.limits.maxQueued > 0;
  }

  /** A place among the client's requests in flight; throws 429 too_many_streams. */
  enterStream(client: string): CapLease {
    return take(this.streams, client, this.limits.maxStreams, () =>
      new ServingError("too_many_streams", `this client already has ${this.limits.maxStreams} requests in flight (MAX_STREAMS_PER_KEY)`, { retryAfterS: 1 }));
  }

  /** A place among the client's queued requests; throws 429 too_many_queued. */
  enterQueue(client: string): CapLease {
    return take(this.queued, client, this.limits.maxQueued, () =>
      new ServingError("too_many_queued", `this client already has ${this.limits.maxQueued} requests waiting for capacity (MAX_QUEUED_PER_KEY)`, { retryAfterS: 1 }));
  }

  streamsOf(client: string): number {
    return this.streams.get(client) ?? 0;
  }

  queuedOf(client: string): number {
    return this.queued.get(client) ?? 0;
  }
}

function take(counts: Map<string, number>, client: string, limit: number, refusal: () => ServingError): CapLease {
  if (limit <= 0) return NO_LEASE;
  const n = counts.get(client) ?? 0;
  if (n >= limit) throw refusal();
  counts.set(client, n + 1);
  let released = false;
  return {
    release() {
      if (released) return;
      released = true;
      const left = (counts.get(client) ?? 1) - 1;
      if (left <= 0) counts.delete(client);
      else counts.set(client, left);
    },
  };
}
