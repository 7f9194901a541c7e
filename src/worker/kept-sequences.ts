/**
 * Sequences a worker keeps after their session ended, as a prefix cache: when a turn completes, its
 * engine sequence is not cleared; the slot goes back to the pool still holding the prompt and the
 * generated tokens, and a later prompt given that slot evaluates only the tokens it does not
 * already hold (prefill reuses the longest common prefix). A turn of a conversation (a client's
 * `x-session-id`) is kept under its conversation; any other completed turn is kept too, anonymous,
 * so that a later request sharing its prefix (a system prompt, the same conversation sent without
 * a session id) can reuse it.
 *
 * A kept sequence never blocks new work: slots are chosen by slot-rank.ts, the worker's KV budget
 * evicts least recently used first, and the idle TTL sweep ends the rest. Eviction is bookkeeping:
 * the stale tokens stay in the sequence until the next prefill there overwrites them (llama.cpp
 * allocates every sequence's KV up front, so nothing is freed by clearing earlier).
 *
 * Every keep and removal is also an event of the cache event log (published to coordinators, which
 * index the block keys; see prefix-blocks.ts). Invariants: a conversation keeps at most one
 * sequence; a slot keeps at most one sequence; `tokens` is the sum over entries. Map order is
 * recency: the first entry is the least recently used.
 */
export interface KeptSequence {
  /** Unique within this worker process; names the entry in cache events. */
  readonly id: number;
  readonly conversationId: string | undefined;
  readonly slotIndex: number;
  /** Tokens whose KV the sequence holds (prompt + generated). */
  readonly tokens: number;
  /** Monotonic ms of the turn that ended last. */
  readonly lastUsedMs: number;
  /** Block keys of the canonical text the sequence holds (prefix-blocks.ts). */
  readonly blocks: readonly string[];
}

export interface KeptSequenceEvents {
  added(k: KeptSequence): void;
  removed(k: KeptSequence): void;
}

export class KeptSequences {
  private readonly byId = new Map<number, KeptSequence>();
  private readonly byConversation = new Map<string, KeptSequence>();
  private readonly bySlot = new Map<number, KeptSequence>();
  private heldTokens = 0;
  private conversationTokensHeld = 0;
  private nextId = 1;

  constructor(private readonly events?: KeptSequenceEvents) {}

  /** All kept sequences. */
  get count(): number {
    return this.byId.size;
  }

  get tokens(): number {
    return this.heldTokens;
  }

  /** Kept sequences of conversations (`x-session-id`), a subset of `count`. */
  get conversations(): number {
    return this.byConversation.size;
  }

  get conversationTokens(): number {
    return this.conversationTokensHeld;
  }

  get(conversationId: string): KeptSequence | undefined {
    return this.byConversation.get(conversationId);
  }

  atSlot(slotIndex: number): KeptSequence | undefined {
    return this.bySlot.get(slotIndex);
  }

  /**
   * Keeps a finished turn's sequence; replaces what the conversation or the slot kept before.
   * Returns the entries of other conversations (or anonymous ones) that it replaced.
   */
  keep(conversationId: string | undefined, slotIndex: number, tokens: number, nowMs: number, blocks: readonly string[] = []): KeptSequence[] {
    const replaced: KeptSequence[] = [];
    const own = conversationId === undefined ? undefined : this.byConversation.get(conversationId);
    for (const old of [own, this.bySlot.get(slotIndex)]) {
      if (old !== undefined && this.remove(old) && old !== own) replaced.push(old);
    }
    const k: KeptSequence = { id: this.nextId++, conversationId, slotIndex, tokens, lastUsedMs: nowMs, blocks };
    this.byId.set(k.id, k);
    if (conversationId !== undefined) {
      this.byConversation.set(conversationId, k);
      this.conversationTokensHeld += tokens;
    }
    this.bySlot.set(slotIndex, k);
    this.heldTokens += tokens;
    this.events?.added(k);
    return replaced;
  }

  /** Removes an entry; false when it was no longer kept. */
  remove(k: KeptSequence): boolean {
    if (this.byId.get(k.id) !== k) return false;
    this.byId.delete(k.id);
    if (k.conversationId !== undefined) {
      this.byConversation.delete(k.conversationId);
      this.conversationTokensHeld -= k.tokens;
    }
    this.bySlot.delete(k.slotIndex);
    this.heldTokens -= k.tokens;
    this.events?.removed(k);
    return true;
  }

  /** The least recently used entry, skipping one conversation's (the one being served). */
  leastRecentlyUsed(except?: string): KeptSequence | undefined {
    for (const k of this.byId.values()) if (except === undefined || k.conversationId !== except) return k;
    return undefined;
  }

  /** Entries idle longer than `ttlMs`, oldest first. */
  expired(nowMs: number, ttlMs: number): KeptSequence[] {
    const out: KeptSequence[] = [];
    for (const k of this.byId.values()) {
      if (nowMs - k.lastUsedMs > ttlMs) out.push(k);
    }
    return out;
  }

  /** Least recently used first. */
  all(): KeptSequence[] {
    return [...this.byId.values()];
  }

  /** 0 for the least recently used entry, 1 for the next, … */
  recencyRank(k: KeptSequence): number {
    let i = 0;
    for (const e of this.byId.values()) {
      if (e === k) return i;
      i++;
    }
    return i;
  }
}
