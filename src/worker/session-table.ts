import type { Clock } from "../common/clock.js";
import type { Logger } from "../common/logger.js";
import { ServingError } from "../protocol/serving-error.js";
import type { Engine, EngineSequence, SequenceState } from "../engine/engine.js";
import { KvStateFileError, decodeStateFile } from "./kv-state-file.js";
import type { SamplingParams } from "../protocol/sampling.js";
import { blockKeyList, canonicalWithOutput } from "../protocol/prefix-blocks.js";
import { CacheEventLog } from "./cache-event-log.js";
import { KeptSequences, type KeptSequence } from "./kept-sequences.js";
import { Session, type SessionExtras } from "./session.js";
import { SlotPool, type SlotLease } from "./slot-pool.js";
import { slotRank } from "./slot-rank.js";
import { restoreWhenIdle, saveWhenIdle } from "./save-when-idle.js";
import { chooseRestore, reusablePrefix, type KvCostModel } from "./kv-restore-rule.js";
import type { KvTiers } from "./kv-tiers.js";

/**
 * The worker's sessions and the aggregates its limits are checked against, kept in step in this
 * one object: session count, KV bytes reserved (prompt + max_tokens of each session), KV bytes held.
 * `end()` is the single exit of a session; it runs once whatever path ends it. A session that
 * completes leaves its sequence kept as prefix cache (kept-sequences.ts: under its conversation for
 * the next turn, or anonymous); kept sequences count against the KV budget but give way to any new
 * session that needs the room, and their block keys are published through `cacheLog`.
 */
export interface SessionLimits {
  maxSessions: number;
  maxSessionKvBytes: number;
  maxKvBytes: number;
  ttlMs: number;
  /**
   * Longest a prefilled session waits for its decode (ms). A coordinator decodes at once after the
   * prefill's answer; one that never does gave up on that answer (a timeout while this worker was
   * frozen) or died, and nobody else can name the session: it is freed, slot and KV with it.
   */
  claimTimeoutMs: number;
}

export type EndReason = "done" | "cancelled" | "disconnect" | "error" | "ttl" | "unclaimed" | "drain" | "prefill_failed";

export class SessionTable {
  private readonly sessions = new Map<string, Session>();
  private reservedKv = 0;
  private keeping = true;
  readonly slots: SlotPool;
  readonly cacheLog = new CacheEventLog();
  readonly kept = new KeptSequences(this.cacheLog);
  /** KV tiers (kv-tiers.ts) and the costs that decide a restore; absent: tiers off. */
  tiers: { store: KvTiers; costs: KvCostModel } | undefined;
  /** Told of every session's end, after it ended (metrics). */
  onEnd: ((session: Session, reason: EndReason) => void) | undefined;

  constructor(
    private readonly engine: Engine,
    readonly limits: SessionLimits,
    private readonly clock: Clock,
    private readonly log: Logger,
  ) {
    this.slots = new SlotPool(engine.info.parallel);
  }

  get count(): number {
    return this.sessions.size;
  }

  get reservedKvBytes(): number {
    return this.reservedKv;
  }

  /** KV bytes the sessions hold now (prompt and generated tokens of each). */
  heldKvBytes(): number {
    let tokens = 0;
    for (const s of this.sessions.values()) tokens += s.heldTokens;
    return tokens * this.engine.info.kvBytesPerToken;
  }

  /** KV bytes of the conversations kept between turns. */
  keptKvBytes(): number {
    return this.kept.conversationTokens * this.engine.info.kvBytesPerToken;
  }

  /** KV bytes of every kept sequence (the prefix cache, conversations included). */
  cachedKvBytes(): number {
    return this.kept.tokens * this.engine.info.kvBytesPerToken;
  }

  /** Sessions decoding now. */
  running(): number {
    let n = 0;
    for (const s of this.sessions.values()) if (s.state === "decoding") n++;
    return n;
  }

  get(id: string): Session | undefined {
    return this.sessions.get(id);
  }

  /**
   * Admits a new session after checking, with exact token counts, the context, the per-session KV
   * limit, the session limit and the worker's KV total. Nothing is reserved when it throws.
   */
  admit(id: string, requestId: string, promptTokens: number, maxTokens: number, sampling: SamplingParams, extras: SessionExtras = {}): Session {
    if (this.sessions.has(id)) throw new ServingError("session_busy", `session ${id} already exists on this worker`);
    const ctx = this.engine.info.contextSize;
    if (promptTokens >= ctx) {
      throw new ServingError("prompt_too_long", `prompt is ${promptTokens} tokens; the context holds ${ctx}`, {
        param: "prompt", details: { prompt_tokens: promptTokens, context_size: ctx },
      });
    }
    if (promptTokens + maxTokens > ctx) {
      throw new ServingError("context_length_exceeded", `prompt (${promptTokens} tokens) + max_tokens (${maxTokens}) exceeds the context of ${ctx} tokens`, {
        param: "max_tokens", details: { prompt_tokens: promptTokens, context_size: ctx },
      });
    }
    const bytes = (promptTokens + maxTokens) * this.engine.info.kvBytesPerToken;
    if (bytes > this.limits.maxSessionKvBytes) {
      throw new ServingError("session_kv_limit", `session needs ${bytes} KV bytes; the per-session limit is ${this.limits.maxSessionKvBytes}`);
    }
    if (this.sessions.size >= this.limits.maxSessions) {
      throw new ServingError("worker_sessions_full", `worker holds its limit of ${this.limits.maxSessions} sessions`);
    }
    this.makeKvRoom(bytes, extras.conversationId);
    if (this.reservedKv + bytes > this.limits.maxKvBytes) {
      throw new ServingError("worker_kv_cache_full", `worker KV cache is full (${this.reservedKv} of ${this.limits.maxKvBytes} bytes reserved)`);
    }
    const session = new Session(id, requestId, promptTokens, maxTokens, sampling, bytes, this.clock.now(), extras);
    this.sessions.set(id, session);
    this.reservedKv += bytes;
    this.log.info(
      {
        session_id: id, request_id: requestId, prompt_tokens: promptTokens, max_tokens: maxTokens, kv_reserved_bytes: bytes,
        ...(extras.template !== undefined ? { template: extras.template } : {}),
        ...(extras.conversationId !== undefined ? { conversation_id: extras.conversationId } : {}),
      },
      "session.start",
    );
    return session;
  }

  /**
   * A slot for the session: the free one holding the longest useful prefix of `prompt` (slot-rank.ts).
   * A kept sequence on the slot taken is dropped from the cache (the prefill overwrites it).
   */
  async acquireSlot(session: Session, prompt: readonly number[]): Promise<SlotLease> {
    const lease = await this.slots.acquire(session.abort.signal, this.rankFor(prompt));
    const k = this.kept.atSlot(lease.index);
    if (k !== undefined) {
      this.kept.remove(k);
      // Saved before this session's prefill overwrites the slot.
      if (k.conversationId === undefined || k.conversationId !== session.conversationId) await this.evicted(k, "slot");
    }
    try {
      await this.restoreFromTier(session, lease.index, prompt);
    } catch (err) {
      lease.release();
      throw err;
    }
    return lease;
  }

  /**
   * A conversation whose KV a tier holds: restored into the slot when that beats prefilling what
   * the slot lacks (kv-restore-rule.ts); either way the tier's copy goes (this turn supersedes it).
   */
  private async restoreFromTier(session: Session, slotIndex: number, prompt: readonly number[]): Promise<void> {
    const t = this.tiers;
    const conv = session.conversationId;
    if (t === undefined || conv === undefined) return;
    const held = t.store.peek(conv);
    if (held === undefined) return;
    const seq = this.engine.sequences[slotIndex]!;
    const choice = chooseRestore(t.costs.costs, held.tier, held.tokens.length, reusablePrefix(held.tokens, prompt), reusablePrefix(seq.heldTokens(), prompt));
    if (!choice.restore || seq.restoreState === undefined) {
      t.store.delete(conv);
      this.log.debug({ conversation_id: conv, tier: held.tier, ...choice }, "kv_tier.skipped");
      return;
    }
    const started = this.clock.now();
    const got = await t.store.take(conv);
    if (got === undefined || session.state === "ended") return;
    const ok = await restoreWhenIdle(seq, got.state, () => (session.state as string) !== "ended");
    const ms = this.clock.now() - started;
    if (!ok) {
      this.log.warn({ conversation_id: conv, tier: got.tier }, "kv_tier.restore_refused");
      return;
    }
    t.costs.observeRestore(got.tier, got.state.tokens.length, ms);
    session.restored = { tier: got.tier, tokens: got.state.tokens.length, ms };
    this.log.info({ conversation_id: conv, slot: slotIndex, tier: got.tier, tokens: got.state.tokens.length, ms, gain_tokens: choice.gainTokens }, "kv_tier.restored");
  }

  /**
   * A kept sequence leaves the cache: a conversation's KV goes on to the tiers, if any. Resolves
   * once saved (or not); callers that do not wait are covered by saveWhenIdle's check that the
   * slot still holds what the conversation held.
   */
  private async evicted(k: KeptSequence, why: "slot" | "kv_budget" | "ttl" | "drain"): Promise<void> {
    this.logEvicted(k, why);
    const t = this.tiers;
    if (t === undefined || k.conversationId === undefined) return;
    const conv = k.conversationId;
    const seq = this.engine.sequences[k.slotIndex]!;
    const state = await saveWhenIdle(seq, seq.heldTokens());
    if (state !== undefined && this.kept.get(conv) === undefined) t.store.put(conv, state, k.blocks);
  }

  /** Saves still in flight (drain waits for them). */
  private readonly saving = new Set<Promise<void>>();

  private evictedLater(k: KeptSequence, why: "kv_budget" | "ttl" | "drain"): void {
    const p = this.evicted(k, why).catch((err) => this.log.warn({ err }, "kv_tier.save_failed")).finally(() => this.saving.delete(p));
    this.saving.add(p);
  }

  /** Resolves when every save to the tiers begun so far is done. */
  async savesSettled(): Promise<void> {
    await Promise.all([...this.saving]);
  }

  /** How well each free slot suits `prompt` (slot-rank.ts). */
  private rankFor(prompt: readonly number[]): (index: number) => number {
    return (index) => {
      const k = this.kept.atSlot(index);
      const held = this.engine.sequences[index]!.heldTokens();
      return slotRank({ held, kept: k !== undefined, recency: k === undefined ? 0 : this.kept.recencyRank(k) }, prompt);
    };
  }

  /** Kept conversations give way, least recently used first, to a reservation of `bytes`. */
  private makeKvRoom(bytes: number, own: string | undefined): void {
    const bpt = this.engine.info.kvBytesPerToken;
    while (this.kept.count > 0 && this.reservedKv + this.kept.tokens * bpt + bytes > this.limits.maxKvBytes) {
      const k = this.kept.leastRecentlyUsed(own) ?? this.kept.leastRecentlyUsed();
      if (k === undefined || !this.kept.remove(k)) break;
      this.evictedLater(k, "kv_budget");
    }
  }

  private logEvicted(k: KeptSequence, why: "slot" | "kv_budget" | "ttl" | "replaced" | "drain"): void {
    if (k.conversationId === undefined) this.log.debug({ slot: k.slotIndex, tokens: k.tokens, why }, "prefix_cache.evicted");
    else this.log.info({ conversation_id: k.conversationId, slot: k.slotIndex, tokens: k.tokens, why }, "conversation.evicted");
  }

  /**
   * Takes over a sequence another worker cached (KV handoff): evaluates its exact tokens into a free
   * slot and keeps it, under its conversation, with its block keys published like any kept
   * sequence. It never waits for a slot or pushes a live session out: it answers 503 instead.
   */
  async adopt(
    conversationId: string | undefined, tokens: readonly number[], blocks: readonly string[], signal: AbortSignal, kvState?: string,
  ): Promise<{ kept: KeptSequence; restored: boolean; restoreMs: number }> {
    if (!this.keeping) throw new ServingError("draining", "worker is draining and takes no cache");
    const bytes = tokens.length * this.engine.info.kvBytesPerToken;
    this.makeKvRoom(bytes, conversationId);
    if (this.reservedKv + this.kept.tokens * this.engine.info.kvBytesPerToken + bytes > this.limits.maxKvBytes) {
      throw new ServingError("worker_kv_cache_full", "no KV room for a handed-off sequence");
    }
    const lease = this.slots.tryAcquire(this.rankFor(tokens));
    if (lease === undefined) throw new ServingError("worker_sessions_full", "no free slot for a handed-off sequence");
    try {
      const old = this.kept.atSlot(lease.index);
      const t0 = this.clock.now();
      if (old !== undefined && this.kept.remove(old)) {
        // Another conversation's KV goes on to the tiers before the adopted one overwrites the slot,
        // as it does when a session takes the slot (acquireSlot): else that conversation's next turn misses.
        if (old.conversationId !== undefined && old.conversationId !== conversationId) await this.evicted(old, "slot");
        else this.logEvicted(old, "slot");
      }
      const seq = this.engine.sequences[lease.index]!;
      const t1 = this.clock.now();
      const restored = await this.restoreTransferred(seq, tokens, kvState, signal);
      const restoreMs = this.clock.now() - t1;
      // A transferred state restores from memory like the host tier's: it feeds the same measured rate.
      if (restored) this.tiers?.costs.observeRestore("host", tokens.length, restoreMs);
      else await seq.prefill(tokens, signal);
      if (!this.keeping) throw new ServingError("draining", "worker began draining during the handoff");
      const held = seq.heldTokens().length;
      for (const replaced of this.kept.keep(conversationId, lease.index, held, this.clock.now(), blocks)) this.logEvicted(replaced, "replaced");
      this.log.info({
        conversation_id: conversationId ?? null, slot: lease.index, tokens: held, kv_restored: restored,
        evict_ms: Math.round(t1 - t0), restore_ms: Math.round(restoreMs),
      }, "cache.adopted");
      return { kept: this.kept.atSlot(lease.index)!, restored, restoreMs };
    } finally {
      lease.release();
    }
  }

  /**
   * A handed-off sequence's KV bytes (kv-state-file.ts, base64), restored into `seq` when this
   * engine has the identity that saved them and they hold exactly `tokens`; false: prefill instead.
   */
  private async restoreTransferred(seq: EngineSequence, tokens: readonly number[], kvState: string | undefined, signal: AbortSignal): Promise<boolean> {
    const identity = this.engine.info.kvStateIdentity;
    if (kvState === undefined || identity === undefined || seq.restoreState === undefined) return false;
    try {
      const { state } = decodeStateFile(Buffer.from(kvState, "base64"), identity);
      if (state.tokens.length !== tokens.length || state.tokens.some((t, i) => t !== tokens[i])) throw new KvStateFileError("tokens differ from the entry's");
      // A caller that gave up (its move budget ran out) stops the wait for the decode loop's gap.
      return await restoreWhenIdle(seq, state, () => !signal.aborted);
    } catch (err) {
      this.log.warn({ reason: (err as Error).message }, "cache.transfer_refused");
      return false;
    }
  }

  /**
   * A copy of a conversation's KV for another worker (`POST /worker/export`): from its kept slot
   * (saved between decode steps, waiting at most `waitMs`) or else from a KV tier. The copy here
   * stays: it is still a valid prefix until the cache or the tier lets it go. Undefined: nothing
   * held, or the slot's save did not come in time.
   */
  async exportConversation(conversationId: string, waitMs: number): Promise<{ tokens: readonly number[]; blocks: readonly string[]; state: SequenceState | undefined; source: "slot" | "host" | "disk" } | undefined> {
    const k = this.kept.get(conversationId);
    if (k !== undefined) {
      const seq = this.engine.sequences[k.slotIndex]!;
      const tokens = seq.heldTokens();
      const state = await saveWhenIdle(seq, tokens, waitMs);
      // Taken by another session while saving: fall through to the tiers (its eviction saved it there).
      if (state !== undefined || this.kept.get(conversationId) === k) return { tokens, blocks: k.blocks, state, source: "slot" };
    }
    const got = await this.tiers?.store.copy(conversationId);
    if (got === undefined) return undefined;
    return { tokens: got.state.tokens, blocks: got.blocks, state: got.state, source: got.tier };
  }

  /** Kept sequences with the tokens their slots hold, most recent first (for a handoff). */
  keptWithTokens(): { kept: KeptSequence; tokens: readonly number[] }[] {
    return this.kept.all().reverse().map((k) => ({ kept: k, tokens: this.engine.sequences[k.slotIndex]!.heldTokens() }));
  }

  /** New turns stop being kept (drain); kept ones are dropped. */
  stopKeeping(): void {
    this.keeping = false;
    for (const k of this.kept.all()) {
      this.kept.remove(k);
      this.evictedLater(k, "drain");
    }
  }

  /**
   * Ends a session once: aborts its work, frees its reservation, and either keeps its sequence as
   * prefix cache (a completed turn) or clears it, then frees its slot.
   */
  end(session: Session, reason: EndReason): void {
    if (session.state === "ended") return;
    session.state = "ended";
    session.abort.abort(new ServingError("internal", `session ended: ${reason}`));
    this.sessions.delete(session.id);
    this.reservedKv -= session.reservedKvBytes;
    const slot = session.slot;
    session.slot = undefined;
    const keep = slot !== undefined && reason === "done" && this.keeping;
    if (keep) {
      const blocks = session.input === undefined ? [] : blockKeyList(canonicalWithOutput(session.input, session.outputText));
      for (const old of this.kept.keep(session.conversationId, slot.index, session.heldTokens, this.clock.now(), blocks)) this.logEvicted(old, "replaced");
      slot.release();
    } else if (slot !== undefined) {
      const seq = this.engine.sequences[slot.index]!;
      seq.clear().catch((err) => this.log.error({ err, session_id: session.id }, "session.clear_failed")).finally(() => slot.release());
    }
    this.log.info(
      {
        session_id: session.id, request_id: session.requestId, reason, prompt_tokens: session.promptTokens,
        cached_tokens: session.cachedTokens, completion_tokens: session.generated,
        kept: keep,
        ...(session.conversationId !== undefined ? { conversation_id: session.conversationId } : {}),
      },
      "session.end",
    );
    this.onEnd?.(session, reason);
  }

  /** Ends sessions prefilled and never decoded past the claim timeout, and idle (not decoding) ones past the TTL; returns how many. */
  sweep(): number {
    const now = this.clock.now();
    let n = 0;
    for (const s of [...this.sessions.values()]) {
      const idleMs = now - s.lastActiveMs;
      if (s.state === "ready" && idleMs > this.limits.claimTimeoutMs) {
        this.end(s, "unclaimed");
        n++;
      } else if (s.state !== "decoding" && idleMs > this.limits.ttlMs) {
        this.end(s, "ttl");
        n++;
      }
    }
    for (const k of this.kept.expired(now, this.limits.ttlMs)) {
      if (this.kept.remove(k)) this.evictedLater(k, "ttl");
    }
    return n;
  }

  endAll(reason: EndReason): void {
    for (const s of [...this.sessions.values()]) this.end(s, reason);
  }

  *all(): IterableIterator<Session> {
    yield* this.sessions.values();
  }
}
