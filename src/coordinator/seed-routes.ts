import type { CoordinatorConfig } from "../common/config.js";
import type { HttpServer, RouteContext } from "../common/http-server.js";
import { parseInferRequest } from "../protocol/seed-api.js";
import { seedEndEvent, seedErrorEvent, seedTokenEvents } from "../protocol/seed-stream.js";
import { SSE_HEADERS, sseComment } from "../protocol/sse.js";
import { toServingError } from "../common/error-mapping.js";
import type { InferencePipeline, StartedInference } from "./inference-pipeline.js";
import type { StreamFormat } from "./relay.js";
import { priorityOf } from "./request-priority.js";
import { conversationIdOf } from "./session-header.js";
import { clientPreflight, type PreflightDeps } from "./client-preflight.js";

/** `POST /coordinator/infer`: the seed's client API over the shared pipeline. */
const seedFormat: StreamFormat = {
  tokens: seedTokenEvents,
  end: (f) => seedEndEvent(f.reason, f.promptTokens, f.completionTokens),
  error: seedErrorEvent,
};

/**
 * `x-route-decision`: which worker, by which profile, with what scores (for "why this worker?"):
 * the pick's total and per-scorer scores, the runner-up, the conversation's rendezvous home, the
 * prompt blocks the pick holds of all, saturated candidates, time queued, attempts.
 */
export function routeDecisionHeader(s: StartedInference): string {
  const d = s.decision;
  const parts = [`worker=${s.workerId}`, `profile=${d.profile}`, `score=${d.pick.total.toFixed(4)}`];
  for (const [k, v] of Object.entries(d.pick.scores)) parts.push(`${k}=${v.toFixed(4)}`);
  if (d.runnerUp) parts.push(`runner_up=${d.runnerUp.candidate.id}:${d.runnerUp.total.toFixed(4)}`);
  if (d.home !== undefined) parts.push(`home=${d.home}`);
  if (s.prefix.blocks > 0) parts.push(`prefix_blocks=${s.prefix.matched.get(s.workerId) ?? 0}/${s.prefix.blocks}`);
  const tier = s.prefix.tiers?.get(s.workerId);
  if (tier !== undefined && tier.blocks > (s.prefix.matched.get(s.workerId) ?? 0)) parts.push(`kv_tier=${tier.tier}:${tier.blocks}/${s.prefix.blocks}`);
  if (d.saturated.length > 0) parts.push(`saturated=${d.saturated.join(",")}`);
  if (s.queuedMs > 0) parts.push(`queued_ms=${Math.round(s.queuedMs)}`);
  if (s.attempts > 1) parts.push(`attempts=${s.attempts}`);
  return parts.join(";");
}

/**
 * For a streaming client that waits in the admission queue: the stream starts (200) and carries
 * its position as SSE comments; the route decision then follows as a comment too (the header is
 * gone by then), and a refusal as the stream's error event.
 */
export function queueComments(res: RouteContext["res"]): (position: number, size: number) => void {
  return (position, size) => {
    if (res.writableEnded || res.destroyed) return;
    if (!res.headersSent) res.writeHead(200, SSE_HEADERS);
    res.write(sseComment(`queued position=${position} size=${size}`));
  };
}

export function registerSeedRoutes(server: HttpServer, pipeline: InferencePipeline, config: CoordinatorConfig, preflight: PreflightDeps): void {
  server.route("POST", "/coordinator/infer", async (ctx: RouteContext) => {
    // Rate and in-flight caps before the body is read.
    clientPreflight(ctx, preflight);
    const body = parseInferRequest(await ctx.readJson(), config.maxTokensLimit);
    const conversationId = conversationIdOf(ctx);
    const clientGone = new AbortController();
    const onClose = () => {
      if (!ctx.res.writableFinished) clientGone.abort();
    };
    ctx.res.on("close", onClose);
    const priority = priorityOf(ctx, body.priority);
    let started: StartedInference;
    try {
      started = await pipeline.start({
        requestId: ctx.requestId, log: ctx.log, model: body.model, prompt: body.prompt, maxTokens: body.max_tokens,
        sampling: body.sampling, signal: clientGone.signal, unknownModel: "unknown_model", anyNameWhenSingleModel: true,
        clientId: ctx.clientId, priority, onQueued: queueComments(ctx.res),
        ...(conversationId !== undefined ? { conversationId } : {}),
        traceparent: traceparentOf(ctx),
      });
    } catch (err) {
      if (!ctx.res.headersSent) throw err;
      // Refused after waiting in the queue: the stream had started, so the error travels inside it.
      const e = toServingError(err);
      if (!ctx.res.writableEnded && !ctx.res.destroyed) ctx.res.end(seedFormat.error(e.code, e.message));
      return;
    } finally {
      ctx.res.off("close", onClose);
    }
    const log = ctx.log.child({ worker_id: started.workerId, session_id: started.sessionId });
    try {
      const decision = routeDecisionHeader(started);
      if (ctx.res.headersSent) ctx.res.write(sseComment(`route ${decision}`));
      else ctx.res.writeHead(200, { ...SSE_HEADERS, "x-route-decision": decision, "x-worker-id": started.workerId });
      const result = await pipeline.stream(started, ctx.res, seedFormat, log);
      log.info({ termination: result.termination, completion_tokens: result.tokens }, "stream.end");
    } finally {
      started.lease.release();
    }
  });
}

/** The client's W3C `traceparent` (validated where it is used). */
export function traceparentOf(ctx: RouteContext): string | undefined {
  const h = ctx.req.headers.traceparent;
  return typeof h === "string" ? h : undefined;
}
