import type { Clock } from "../common/clock.js";
import type { Logger } from "../common/logger.js";
import { sendJson, type RouteContext } from "../common/http-server.js";
import { ServingError } from "../protocol/serving-error.js";
import { disabledTracer, SpanKind, type Tracer } from "../common/tracer.js";
import type { Engine } from "../engine/engine.js";
import type { CacheNotice, WorkerHealth } from "../protocol/heartbeat.js";
import { BLOCK_CHARS } from "../protocol/prefix-blocks.js";
import { SSE_HEADERS, sseData } from "../protocol/sse.js";
import { parseTraceparent } from "../protocol/traceparent.js";
import { nativeToolPlan } from "./native-tool-plan.js";
import { parseAdoptRequest, type DrainListing, type HandoffEntry, parseCancelRequest, parseDecodeRequest, parsePrefillRequest, type GenerateAckEvent, type PrefillRequest, type PrefillResponse } from "../protocol/worker-api.js";
import type { RenderedChat } from "../engine/engine.js";
import { streamDecode } from "./decode-stream.js";
import { renderPlainChat } from "./plain-chat.js";
import type { Session } from "./session.js";
import { SessionTable, type SessionLimits } from "./session-table.js";
import { WorkerMetrics, type WorkerMetricsView } from "./worker-metrics.js";

/**
 * The worker's behaviour behind its HTTP routes: prefill admits a session and builds its KV cache,
 * decode streams its tokens, generate does both in one exchange, cancel ends it. Every path out of
 * a session goes through `SessionTable.end`, once.
 */
export interface WorkerServiceOptions {
  workerId: string;
  engine: Engine;
  limits: SessionLimits;
  channelTokens: number;
  modelAliases: readonly string[];
  /** The model file's modification time (unix seconds), shown as `created` in OpenAI's model list. */
  modelCreatedS?: number;
  clock: Clock;
  log: Logger;
  /** Spans of prefill and decode, children of the coordinator's (W3C traceparent); off by default. */
  tracer?: Tracer;
  /** Also expose vLLM's metric names (default true). */
  vllmMetrics?: boolean;
  /** Largest adopt body another worker accepts (its MAX_BODY_BYTES; this worker's is assumed). */
  transferMaxBytes?: number;
}

/** `GET /worker/cache`: kept sequences, most recently used first. */
import type { KvTiers, KvTierName } from "./kv-tiers.js";
import { handoffEntries } from "./handoff-entries.js";
import type { KvCostModel } from "./kv-restore-rule.js";

export interface WorkerCacheListing {
  epoch: string;
  seq: number;
  block_chars: number;
  entries: {
    id: number;
    conversation_id: string | null;
    slot: number;
    tokens: number;
    /** Tokens the engine sequence holds now (the KV itself, not the bookkeeping). */
    held_tokens: number;
    /** Whether coordinators were told of it (entries shorter than one block are not). */
    published: boolean;
    blocks: string[];
  }[];
  /** Conversations a KV tier holds (kv-tiers.ts), host first, least recently used first. */
  tiers: { conversation_id: string; tier: KvTierName; tokens: number; bytes: number; blocks: string[] }[];
}

export class WorkerService {
  readonly sessions: SessionTable;
  readonly metrics: WorkerMetrics;
  private readonly tracer: Tracer;
  private draining = false;
  private idleWaiters: (() => void)[] = [];

  constructor(private readonly o: WorkerServiceOptions) {
    this.sessions = new SessionTable(o.engine, o.limits, o.clock, o.log);
    this.tracer = o.tracer ?? disabledTracer;
    this.metrics = new WorkerMetrics(() => this.metricsView(), () => o.clock.now(), { vllm: o.vllmMetrics ?? true });
    this.sessions.onEnd = (session, reason) => this.metrics.sessionEnded(reason, session.createdMs);
  }

  private metricsView(): WorkerMetricsView {
    const { sessions } = this;
    return {
      info: this.o.engine.info,
      sessions: sessions.count,
      maxSessions: this.o.limits.maxSessions,
      slotsBusy: sessions.slots.busy,
      slotsTotal: sessions.slots.total,
      waiting: sessions.slots.waiting,
      kvHeldBytes: sessions.heldKvBytes(),
      kvReservedBytes: sessions.reservedKvBytes,
      maxKvBytes: this.o.limits.maxKvBytes,
      keptSessions: sessions.kept.count,
      keptKvBytes: sessions.keptKvBytes(),
      draining: this.draining,
      ...(sessions.tiers !== undefined ? { kvTiers: this.kvTierHealth()! } : {}),
    };
  }

  get isDraining(): boolean {
    return this.draining;
  }

  health(): WorkerHealth {
    const info = this.o.engine.info;
    return {
      alive: true,
      active_sessions: this.sessions.count,
      kv_cache_bytes: this.sessions.heldKvBytes(),
      worker_id: this.o.workerId,
      draining: this.draining,
      engine: info.engine,
      model: {
        id: info.modelId,
        aliases: [...this.o.modelAliases],
        context_size: info.contextSize,
        kv_bytes_per_token: info.kvBytesPerToken,
        ...(info.modelPath !== undefined ? { path: info.modelPath } : {}),
        ...(this.o.modelCreatedS !== undefined ? { created: this.o.modelCreatedS } : {}),
      },
      limits: {
        max_sessions: this.o.limits.maxSessions,
        max_session_kv_bytes: this.o.limits.maxSessionKvBytes,
        max_kv_bytes: this.o.limits.maxKvBytes,
      },
      slots: { total: this.sessions.slots.total, busy: this.sessions.slots.busy },
      waiting: this.sessions.slots.waiting,
      running: this.sessions.running(),
      kv_reserved_bytes: this.sessions.reservedKvBytes,
      kept_sessions: this.sessions.kept.conversations,
      kept_kv_bytes: this.sessions.keptKvBytes(),
      cached_sequences: this.sessions.kept.count,
      cached_kv_bytes: this.sessions.cachedKvBytes(),
      threads: info.threads,
      ...(this.sessions.tiers !== undefined ? { kv_tiers: this.kvTierHealth()! } : {}),
      ...(info.cpuBackend !== undefined ? { cpu_backend: info.cpuBackend } : {}),
    };
  }

  /** The prefix cache as published to coordinators, with what each sequence actually holds (`GET /worker/cache`). */
  cacheListing(): WorkerCacheListing {
    const log = this.sessions.cacheLog;
    return {
      epoch: log.epoch,
      seq: log.lastSeq,
      block_chars: BLOCK_CHARS,
      entries: this.sessions.kept.all().reverse().map((k) => ({
        id: k.id,
        conversation_id: k.conversationId ?? null,
        slot: k.slotIndex,
        tokens: k.tokens,
        held_tokens: this.o.engine.sequences[k.slotIndex]!.heldTokens().length,
        published: log.entries().has(k.id),
        blocks: [...k.blocks],
      })),
      tiers: (this.sessions.tiers?.store.entries() ?? []).map((e) => ({
        conversation_id: e.key, tier: e.tier, tokens: e.tokens, bytes: e.bytes, blocks: [...e.blocks],
      })),
    };
  }

  /** Turns the KV tiers on (start-worker.ts, after the calibration). */
  attachTiers(store: KvTiers, costs: KvCostModel): void {
    this.sessions.tiers = { store, costs };
    // Tier holdings are published like kept sequences, with their tier (prefix-index.ts).
    store.events = this.sessions.cacheLog;
  }

  /** The tiers' byte use and limits, and what a tier hit is worth against a slot hit. */
  kvTierHealth(): WorkerHealth["kv_tiers"] {
    const t = this.sessions.tiers;
    if (t === undefined) return undefined;
    const st = t.store.stats();
    return {
      host_bytes: st.host_bytes, host_limit_bytes: st.host_limit_bytes, host_entries: st.host_entries,
      disk_bytes: st.disk_bytes, disk_limit_bytes: st.disk_limit_bytes, disk_entries: st.disk_entries,
      weight_host: t.costs.tierWeight("host"), weight_disk: t.costs.tierWeight("disk"),
      prefill_ms_per_token: t.costs.costs.prefillMsPerToken,
      restore_ms_per_token: { ...t.costs.costs.restoreMsPerToken },
      saved: st.saved, restored_host: st.restored_host, restored_disk: st.restored_disk, discarded: st.discarded, dropped: st.dropped,
    };
  }

  /** `POST /worker/prefill`: admits a session and builds its KV cache; the session then waits for its decode. */
  async prefill(ctx: RouteContext): Promise<void> {
    const { body } = await this.admitAndPrefill(ctx);
    sendJson(ctx.res, 200, body);
  }

  /**
   * `POST /worker/generate`: prefill and decode in one exchange. Whatever /worker/prefill refuses is
   * refused here with the same status and body, before any byte of the stream (a coordinator may
   * still retry elsewhere); on success the first event is the prefill's answer (GenerateAckEvent),
   * then the session's decode events, up to the request's max_tokens, with no decode claim between.
   */
  async generate(ctx: RouteContext): Promise<void> {
    const { session, body, log } = await this.admitAndPrefill(ctx);
    const ack: GenerateAckEvent = { prefill: body };
    await this.streamSession(ctx, session, session.maxTokens, log, sseData(JSON.stringify(ack)));
  }

  /**
   * The prefill both routes share: parse, refuse (draining, admission limits), take a slot, build
   * the KV. Resolves with the ready session and its answer; a failure ends the session and throws
   * (the one error handler answers it). A client gone before the answer ends the session.
   */
  private async admitAndPrefill(ctx: RouteContext): Promise<{ session: Session; body: PrefillResponse; log: Logger }> {
    const parsed = parsePrefillRequest(await ctx.readJson());
    if (this.draining) throw new ServingError("draining", "worker is draining and takes no new sessions");
    // Tools in the model's own format where its template has one (native-tool-plan.ts); else generic.
    const native = parsed.tools !== undefined ? nativeToolPlan(this.o.engine, parsed.tools, parsed.sampling) : undefined;
    const req = native !== undefined ? { ...parsed, sampling: native.sampling } : parsed;
    const input = native?.rendered ?? this.promptOf(req);
    const tokens = input.tokens;
    // Without a limit, generation may fill the context; admit() refuses a prompt that fills it already.
    const maxTokens = req.max_tokens ?? Math.max(1, this.o.engine.info.contextSize - tokens.length);
    const session = this.sessions.admit(req.session_id, ctx.requestId, tokens.length, maxTokens, req.sampling, {
      ...(req.conversation_id !== undefined ? { conversationId: req.conversation_id } : {}),
      stops: [...(req.sampling.stop ?? []), ...input.stops],
      stopTokens: new Set(input.stopTokens),
      ...(req.messages !== undefined ? { template: input.template } : {}),
      input: req.messages !== undefined ? { messages: req.messages } : { prompt: req.prompt! },
    });
    const log = ctx.log.child({ session_id: session.id, worker_id: this.o.workerId });
    const span = this.tracer.startSpan("worker.prefill", {
      parent: parseTraceparent(ctx.req.headers.traceparent), kind: SpanKind.server,
      attributes: { "request.id": ctx.requestId, "session.id": session.id, "worker.id": this.o.workerId, prompt_tokens: tokens.length },
    });
    const onClose = () => {
      if (!ctx.res.writableFinished) this.end(session, "disconnect");
    };
    ctx.res.on("close", onClose);
    const started = this.o.clock.now();
    try {
      await this.o.engine.validateSampling?.(req.sampling);
      session.slot = await this.sessions.acquireSlot(session, tokens);
      const slotAt = this.o.clock.now();
      const result = await this.o.engine.sequences[session.slot.index]!.prefill(tokens, session.abort.signal);
      if (session.state === "ended") throw new ServingError("internal", "session ended during prefill");
      session.heldTokens = tokens.length;
      session.cachedTokens = result.reused;
      this.sessions.tiers?.costs.observePrefill(result.evaluated, this.o.clock.now() - slotAt);
      session.state = "ready";
      session.lastActiveMs = this.o.clock.now();
      this.metrics.prefilled(tokens.length, result.reused, slotAt - started, session.lastActiveMs - slotAt);
      span.setAttribute("cached_tokens", result.reused);
      span.setAttribute("slot_wait_ms", Math.round(slotAt - started));
      log.debug({ prompt_tokens: tokens.length, reused: result.reused, template: input.template, ms: session.lastActiveMs - started }, "prefill.done");
      const body: PrefillResponse = {
        status: "ok",
        prompt_tokens: tokens.length,
        kv_cache_bytes: session.reservedKvBytes,
        cached_tokens: result.reused,
        ...(session.restored !== undefined ? { kv_tier: session.restored.tier, restored_tokens: session.restored.tokens } : {}),
        worker_id: this.o.workerId,
        max_tokens: maxTokens,
        ...(native !== undefined ? { tool_syntax: native.syntax } : {}),
      };
      return { session, body, log };
    } catch (err) {
      span.setError((err as Error).message);
      this.end(session, "prefill_failed");
      throw err;
    } finally {
      span.end();
      // From here the caller owns the session: /worker/prefill leaves it ready for its decode,
      // /worker/generate streams it at once (its own close handler cancels it).
      ctx.res.off("close", onClose);
    }
  }

  /** The prompt's tokens: the text tokenized, or the messages rendered by the chat template. */
  private promptOf(req: PrefillRequest): RenderedChat {
    const engine = this.o.engine;
    if (req.messages === undefined) return { tokens: engine.tokenize(req.prompt!), stops: [], stopTokens: [], template: "none" };
    return engine.renderChat?.(req.messages) ?? renderPlainChat(req.messages, (t) => engine.tokenize(t));
  }

  /** `POST /worker/decode`: claims a prefilled session and streams its tokens. */
  async decode(ctx: RouteContext): Promise<void> {
    const req = parseDecodeRequest(await ctx.readJson());
    const session = this.sessions.get(req.session_id);
    if (session === undefined) throw new ServingError("session_not_found", `unknown session ${req.session_id}`);
    if (session.state !== "ready") throw new ServingError("session_busy", `session ${session.id} is ${session.state}`);
    const log = ctx.log.child({ session_id: session.id, worker_id: this.o.workerId });
    await this.streamSession(ctx, session, Math.min(req.max_tokens ?? session.maxTokens, session.maxTokens), log);
  }

  /**
   * The decode both routes share: a ready session's tokens as SSE (decode-stream.ts), `first` (an
   * already framed event) ahead of them. Closing the connection cancels the session; its end
   * (kept sequence, cache notice and announce before the final event, metrics) is the same for both.
   */
  private async streamSession(ctx: RouteContext, session: Session, maxTokens: number, log: Logger, first?: string): Promise<void> {
    if (session.slot === undefined) throw new ServingError("internal", "ready session without a slot");
    session.state = "decoding";
    const { res } = ctx;
    res.writeHead(200, SSE_HEADERS);
    // The acknowledgement goes out with the headers, in one write.
    if (first === undefined) res.flushHeaders();
    else if (!res.destroyed) res.write(first);
    const onClose = () => {
      if (!res.writableFinished) this.end(session, "disconnect");
    };
    res.on("close", onClose);
    const span = this.tracer.startSpan("worker.decode", {
      parent: parseTraceparent(ctx.req.headers.traceparent), kind: SpanKind.server,
      attributes: { "request.id": ctx.requestId, "session.id": session.id, "worker.id": this.o.workerId },
    });
    const { metrics } = this;
    const createdMs = session.createdMs;
    let lastTokenMs = 0;
    const outcome = await streamDecode({
      session,
      sequence: this.o.engine.sequences[session.slot.index]!,
      res,
      maxTokens,
      channelTokens: this.o.channelTokens,
      log,
      onToken: () => {
        lastTokenMs = metrics.token(createdMs, lastTokenMs);
      },
      // A completed generation ends its session at once: its KV is kept and published before the
      // client hears the end (and may send the next turn).
      onGenerated: (reason) => {
        if (reason !== "length" && reason !== "stop") return undefined;
        const slot = session.slot?.index;
        this.end(session, "done");
        const kept = slot === undefined ? undefined : this.sessions.kept.atSlot(slot);
        return kept === undefined ? undefined : this.sessions.cacheLog.noticeOf(kept.id);
      },
      announce: async (notice) => {
        if (this.announceCache === undefined) return;
        const t0 = performance.now();
        // false: some coordinator had not answered within CACHE_ANNOUNCE_WAIT_MS; the turn ends anyway.
        if (!(await this.announceCache(notice))) log.info({ seq: notice.event.seq, waited_ms: Math.round(performance.now() - t0) }, "cache.announce_late");
      },
    });
    res.off("close", onClose);
    if (outcome.reason === "error") metrics.decodeFailed();
    span.setAttribute("completion_tokens", outcome.completionTokens);
    span.setAttribute("finish_reason", outcome.reason);
    if (outcome.error) span.setError(outcome.error.message);
    span.end();
    this.end(session, outcome.reason === "error" ? "error" : outcome.reason === "cancelled" ? "cancelled" : "done");
  }

  cancel(ctx: RouteContext, body: { session_id: string }): void {
    const session = this.sessions.get(body.session_id);
    if (session === undefined) throw new ServingError("session_not_found", `unknown session ${body.session_id}`);
    this.end(session, "cancelled");
    sendJson(ctx.res, 200, { status: "ok" });
  }

  async cancelRoute(ctx: RouteContext): Promise<void> {
    this.cancel(ctx, parseCancelRequest(await ctx.readJson()));
  }

  /**
   * `POST /worker/drain`: refuses new sessions from now on (the next heartbeat says so) and lists
   * the cached sequences with their tokens, most recent first, for a coordinator to hand off.
   */
  async drainRoute(ctx: RouteContext): Promise<void> {
    this.draining = true;
    const info = this.o.engine.info;
    const entries = await handoffEntries(this.o.engine, this.sessions.keptWithTokens(), this.o.transferMaxBytes ?? 1 << 20);
    const body: DrainListing = { worker_id: this.o.workerId, model: info.modelId, running: this.sessions.count, entries };
    ctx.log.info({ entries: entries.length, running: body.running }, "worker.drain_requested");
    this.onDrainRequested?.();
    sendJson(ctx.res, 200, body);
  }

  /**
   * `POST /worker/undrain`: takes sessions again after an operator's drain (the next heartbeat
   * says so). A worker that is shutting down stays drained (409).
   */
  undrainRoute(ctx: RouteContext): void {
    if (this.shuttingDown) throw new ServingError("draining", "worker is shutting down; it cannot take sessions again");
    const was = this.draining;
    this.draining = false;
    ctx.log.info({ was_draining: was }, "worker.undrain_requested");
    this.onDrainRequested?.();
    sendJson(ctx.res, 200, { worker_id: this.o.workerId, draining: false });
  }

  /** Set once shutdown's drain began: nothing undoes it. */
  private shuttingDown = false;

  /** Told when a coordinator asked this worker to drain or undrain (to announce it in a heartbeat at once). */
  onDrainRequested: (() => void) | undefined;

  /**
   * Resolves once every coordinator heartbeated has this cache event, or after a bounded wait
   * (CACHE_ANNOUNCE_WAIT_MS): a completed stream's last event waits for it.
   */
  announceCache: ((notice: CacheNotice) => Promise<boolean>) | undefined;

  /** `POST /worker/adopt`: takes over a sequence a draining worker cached. */
  async adoptRoute(ctx: RouteContext): Promise<void> {
    const info = this.o.engine.info;
    const req = parseAdoptRequest(await ctx.readJson(), info.vocabSize, info.contextSize);
    if (this.draining) throw new ServingError("draining", "worker is draining and takes no cache");
    if (req.model !== undefined && req.model !== info.modelId) {
      throw new ServingError("invalid_field", `this worker serves '${info.modelId}', not '${req.model}'`, { param: "model" });
    }
    const abort = new AbortController();
    const onClose = () => {
      if (!ctx.res.writableFinished) abort.abort();
    };
    ctx.res.on("close", onClose);
    try {
      const k = await this.sessions.adopt(req.conversation_id ?? undefined, req.tokens, req.blocks, abort.signal, req.kv_state);
      sendJson(ctx.res, 200, { status: "ok", tokens: k.kept.tokens, slot: k.kept.slotIndex, kv_restored: k.restored });
    } finally {
      ctx.res.off("close", onClose);
    }
  }

  /** Refuses new sessions and resolves when running ones are done (or `timeoutMs` passed). */
  async drain(timeoutMs: number): Promise<void> {
    this.draining = true;
    this.shuttingDown = true;
    this.sessions.stopKeeping();
    if (this.sessions.count > 0) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        new Promise<void>((resolve) => this.idleWaiters.push(resolve)),
        new Promise<void>((resolve) => (timer = setTimeout(resolve, timeoutMs))),
      ]);
      clearTimeout(timer);
    }
    this.sessions.endAll("drain");
  }

  private end(session: Session, reason: Parameters<SessionTable["end"]>[1]): void {
    this.sessions.end(session, reason);
    if (this.sessions.count === 0 && this.idleWaiters.length > 0) {
      for (const w of this.idleWaiters.splice(0)) w();
    }
  }

  sweep(): void {
    if (this.sessions.sweep() > 0 && this.sessions.count === 0) for (const w of this.idleWaiters.splice(0)) w();
  }
}
