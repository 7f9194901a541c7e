/**
 * Conversations whose KV cache a worker keeps between turns. When a turn of a conversation (a
 * client's `x-session-id`) completes, its engine sequence is not cleared: the slot goes back to the
 * pool with the conversation still in it, and the next turn, given that slot, evaluates only the
 * tokens it does not already hold (prefill reuses the longest common prefix).
 *
 * A kept sequence never blocks new work: a free slot holding none is preferred, then the least
 * recently used kept one, which is then evicted; the worker's KV budget evicts least recently used
 * first too, and the idle TTL sweep ends the rest. Eviction is bookkeeping only: the stale tokens
 * stay in the sequence until the next prefill there overwrites them (llama.cpp allocates every
 * sequence's KV up front, so nothing is freed by clearing earlier).
 *
 * Invariants: a conversation keeps at most one sequence; a slot keeps at most one conversation;
 * `tokens` is the sum over entries. Map order is recency: the first entry is the LRU.
 */
export interface KeptSequence {
  readonly conversationId: string;
  readonly slotIndex: number;
  /** Tokens whose KV the sequence holds (prompt + generated). */
  readonly tokens: number;
  /** Monotonic ms of the turn that ended last. */
  readonly lastUsedMs: number;
}

export class KeptSequences {
  private readonly byConversation = new Map<string, KeptSequence>();
  private readonly bySlot = new Map<number, KeptSequence>();
  private heldTokens = 0;

  get count(): number {
    return this.byConversation.size;
  }

  get tokens(): number {
    return this.heldTokens;
  }

  get(conversationId: string): KeptSequence | undefined {
    return this.byConversation.get(conversationId);
  }

  atSlot(slotIndex: number): KeptSequence | undefined {
    return this.bySlot.get(slotIndex);
  }

  /** Keeps a finished turn's sequence; replaces what the conversation or the slot kept before. */
  keep(conversationId: string, slotIndex: number, tokens: number, nowMs: number): KeptSequence[] {
    const replaced: KeptSequence[] = [];
    for (const old of [this.byConversation.get(conversationId), this.bySlot.get(slotIndex)]) {
      if (old !== undefined && this.remove(old)) replaced.push(old);
    }
    const k: KeptSequence = { conversationId, slotIndex, tokens, lastUsedMs: nowMs };
    this.byConversation.set(conversationId, k);
    this.bySlot.set(slotIndex, k);
    this.heldTokens += tokens;
    return replaced.filter((r) => r.conversationId !== conversationId);
  }

  /** Removes an entry; false when it was no longer kept. */
  remove(k: KeptSequence): boolean {
    if (this.byConversation.get(k.conversationId) !== k) return false;
    this.byConversation.delete(k.conversationId);
    this.bySlot.delete(k.slotIndex);
    this.heldTokens -= k.tokens;
    return true;
  }

  /** The least recently used entry, skipping one conversation (the one being served). */
  leastRecentlyUsed(except?: string): KeptSequence | undefined {
    for (const k of this.byConversation.values()) if (k.conversationId !== except) return k;
    return undefined;
  }

  /** Entries idle longer than `ttlMs`, oldest first. */
  expired(nowMs: number, ttlMs: number): KeptSequence[] {
    const out: KeptSequence[] = [];
    for (const k of this.byConversation.values()) {
      if (nowMs - k.lastUsedMs > ttlMs) out.push(k);
    }
    return out;
  }

  all(): KeptSequence[] {
    return [...this.byConversation.values()];
  }

  /**
   * Ranks free slots for a new session (higher is better): the conversation's own kept slot, then
   * slots keeping nothing, then kept slots from least to most recently used.
   */
  rankFor(conversationId: string | undefined): (slotIndex: number) => number {
    return (slotIndex) => {
      const k = this.bySlot.get(slotIndex);
      if (k === undefined) return 0;
      if (k.conversationId === conversationId) return 1;
      return -1 - recencyRank(this.byConversation, k);
    };
  }
}

/** 0 for the LRU entry, 1 for the next, … (Map order is recency). */
function recencyRank(m: Map<string, KeptSequence>, k: KeptSequence): number {
  let i = 0;
  for (const e of m.values()) {
    if (e === k) return i;
    i++;
  }
  return i;
}
