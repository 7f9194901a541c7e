import type { Clock } from "../common/clock.js";

/**
 * Which worker holds each conversation's KV cache (a client's `x-session-id`), as this coordinator
 * last routed it: soft state, bounded in size (least recently used entries go first) and in age
 * (an entry older than `ttlMs` is forgotten: the worker has evicted it by then). A restarted
 * coordinator forgets everything; the next turn of each conversation is then routed by load and
 * its KV rebuilt there, which costs a prefill and nothing else.
 */
export const MAX_AFFINITY_ENTRIES = 100_000;

interface Entry {
  workerId: string;
  atMs: number;
}

export class SessionAffinity {
  private readonly entries = new Map<string, Entry>();

  constructor(
    private readonly clock: Clock,
    private readonly ttlMs: number,
    private readonly maxEntries = MAX_AFFINITY_ENTRIES,
  ) {}

  get size(): number {
    return this.entries.size;
  }

  /** The worker that served the conversation's last turn, unless that is too long ago. */
  workerOf(conversationId: string): string | undefined {
    const e = this.entries.get(conversationId);
    if (e === undefined) return undefined;
    if (this.clock.now() - e.atMs > this.ttlMs) {
      this.entries.delete(conversationId);
      return undefined;
    }
    return e.workerId;
  }

  record(conversationId: string, workerId: string): void {
    this.entries.delete(conversationId);
    this.entries.set(conversationId, { workerId, atMs: this.clock.now() });
    if (this.entries.size > this.maxEntries) this.entries.delete(this.entries.keys().next().value!);
  }
}
