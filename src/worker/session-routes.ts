import type { Logger } from "../common/logger.js";
import { sendJson, type RouteContext } from "../common/http-server.js";
import { ServingError } from "../protocol/serving-error.js";
import { SpanKind, type Tracer } from "../common/tracer.js";
import type { CacheNotice } from "../protocol/heartbeat.js";
import { SSE_HEADERS, sseData } from "../protocol/sse.js";
import { DECODE_TRACEPARENT_HEADER, parseTraceparent } from "../protocol/traceparent.js";
import { nativeToolPlan } from "./native-tool-plan.js";
import { parseCancelRequest, parseDecodeRequest, parsePrefillRequest, type GenerateAckEvent, type PrefillRequest, type PrefillResponse } from "../protocol/worker-api.js";
import type { RenderedChat } from "../engine/engine.js";
import { streamDecode } from "./decode-stream.js";
import { renderPlainChat } from "./plain-chat.js";
import type { Session } from "./session.js";
import type { SessionTable } from "./session-table.js";
import type { WorkerDrain } from "./worker-drain.js";
import type { WorkerMetrics } from "./worker-metrics.js";
import type { WorkerServiceOptions } from "./worker-service-options.js";

/**
 * The session routes: prefill admits a session and builds its KV cache, decode streams its tokens,
 * generate does both in one exchange, cancel ends it. Every path out of a session goes through
 * `WorkerDrain.end` (and so `SessionTable.end`), once.
 */
export class SessionRoutes {
  /**
   * Resolves once every coordinator heartbeated has this cache event, or after a bounded wait
   * (CACHE_ANNOUNCE_WAIT_MS): a completed stream's last event waits for it.
   */
  announceCache: ((notice: CacheNotice) => Promise<boolean>) | undefined;

  constructor(
    private readonly o: WorkerServiceOptions,
    private readonly sessions: SessionTable,
    private readonly metrics: WorkerMetrics,
    private readonly tracer: Tracer,
    private readonly state: WorkerDrain,
  ) {}

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
    if (this.state.draining) throw new ServingError("draining", "worker is draining and takes no new sessions");
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
      if (!ctx.res.writableFinished) this.state.end(session, "disconnect");
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
      this.state.end(session, "prefill_failed");
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
      if (!res.writableFinished) this.state.end(session, "disconnect");
    };
    res.on("close", onClose);
    // In one exchange (generate) the caller names its decode span apart from its prefill's.
    const headers = ctx.req.headers;
    const span = this.tracer.startSpan("worker.decode", {
      parent: parseTraceparent(headers[DECODE_TRACEPARENT_HEADER] ?? headers.traceparent), kind: SpanKind.server,
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
        this.state.end(session, "done");
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
    this.state.end(session, outcome.reason === "error" ? "error" : outcome.reason === "cancelled" ? "cancelled" : "done");
  }

  cancel(ctx: RouteContext, body: { session_id: string }): void {
    const session = this.sessions.get(body.session_id);
    if (session === undefined) throw new ServingError("session_not_found", `unknown session ${body.session_id}`);
    this.state.end(session, "cancelled");
    sendJson(ctx.res, 200, { status: "ok" });
  }

  async cancelRoute(ctx: RouteContext): Promise<void> {
    this.cancel(ctx, parseCancelRequest(await ctx.readJson()));
  }
}
