import { sendJson, type RouteContext } from "../common/http-server.js";
import { ServingError } from "../protocol/serving-error.js";
import { parseAdoptRequest, parseExportRequest, KV_EXPORT_HEADERS, type AdoptAnswer, type DrainListing } from "../protocol/worker-api.js";
import { handoffEntries, transferEntry } from "./handoff-entries.js";
import type { SessionTable } from "./session-table.js";
import type { WorkerDrain } from "./worker-drain.js";
import type { WorkerServiceOptions } from "./worker-service-options.js";

/** Longest an export waits for the decode loop's gap between steps to save a kept slot (ms). */
const EXPORT_SAVE_WAIT_MS = 1000;

/**
 * The routes that move cached conversations between workers: drain (list them for a handoff) and
 * undrain, adopt (take one over), export (copy one's KV for a move).
 */
export class HandoffRoutes {
  /** Told when a coordinator asked this worker to drain or undrain (to announce it in a heartbeat at once). */
  onDrainRequested: (() => void) | undefined;

  constructor(
    private readonly o: WorkerServiceOptions,
    private readonly sessions: SessionTable,
    private readonly state: WorkerDrain,
  ) {}

  /**
   * `POST /worker/drain`: refuses new sessions from now on (the next heartbeat says so) and lists
   * the cached sequences with their tokens, most recent first, for a coordinator to hand off.
   */
  async drainRoute(ctx: RouteContext): Promise<void> {
    this.state.draining = true;
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
    if (this.state.shuttingDown) throw new ServingError("draining", "worker is shutting down; it cannot take sessions again");
    const was = this.state.draining;
    this.state.draining = false;
    ctx.log.info({ was_draining: was }, "worker.undrain_requested");
    this.onDrainRequested?.();
    sendJson(ctx.res, 200, { worker_id: this.o.workerId, draining: false });
  }

  /** `POST /worker/adopt`: takes over a sequence a draining worker cached. */
  async adoptRoute(ctx: RouteContext): Promise<void> {
    const info = this.o.engine.info;
    const started = this.o.clock.now();
    const req = parseAdoptRequest(await ctx.readJson(), info.vocabSize, info.contextSize);
    // A KV state is megabytes of JSON: how long reading it took, apart from the adoption itself.
    ctx.log.info({ read_ms: Math.round(this.o.clock.now() - started), kv_state_bytes: req.kv_state?.length ?? 0 }, "adopt.read");
    if (this.state.draining) throw new ServingError("draining", "worker is draining and takes no cache");
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
      const answer: AdoptAnswer = { status: "ok", tokens: k.kept.tokens, slot: k.kept.slotIndex, kv_restored: k.restored, restore_ms: k.restoreMs };
      sendJson(ctx.res, 200, answer);
    } finally {
      ctx.res.off("close", onClose);
    }
  }

  /**
   * `POST /worker/export`: a copy of a conversation's KV, for a coordinator that moves the
   * conversation to another worker because this one cannot take its next turn now. A kept slot is
   * saved between decode steps, waiting at most EXPORT_SAVE_WAIT_MS (the coordinator bounds the
   * whole move by the prefill it replaces anyway).
   */
  async exportRoute(ctx: RouteContext): Promise<void> {
    const { conversation_id } = parseExportRequest(await ctx.readJson());
    const info = this.o.engine.info;
    const got = await this.sessions.exportConversation(conversation_id, EXPORT_SAVE_WAIT_MS);
    if (got === undefined || got.tokens.length < 2) throw new ServingError("not_found", `no KV held for conversation ${conversation_id}`);
    const entry = transferEntry(conversation_id, conversation_id, info.kvStateIdentity, got.tokens, got.blocks, got.state, this.o.transferMaxBytes ?? 1 << 20);
    if (entry.kv_state === undefined) throw new ServingError("not_found", `conversation ${conversation_id} has no KV state to hand over (engine, or larger than the body limit)`);
    const stateBytes = Math.floor(entry.kv_state.length * 3 / 4);
    ctx.log.info({ conversation_id, tokens: got.tokens.length, source: got.source, state_bytes: stateBytes }, "kv.exported");
    sendJson(ctx.res, 200, { ...entry, model: info.modelId }, {
      [KV_EXPORT_HEADERS.tokens]: String(got.tokens.length), [KV_EXPORT_HEADERS.stateBytes]: String(stateBytes), [KV_EXPORT_HEADERS.source]: got.source,
    });
  }

}
