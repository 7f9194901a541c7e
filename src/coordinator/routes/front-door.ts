import type { RouteContext } from "../../common/http-server.js";
import type { Logger } from "../../common/logger.js";
import { toServingError } from "../../protocol/error-mapping.js";
import { SSE_HEADERS, sseComment } from "../../protocol/sse.js";
import type { InferenceJob, InferencePipeline, StartedInference } from "../pipeline/inference-pipeline.js";
import { priorityOf } from "./request-priority.js";

/**
 * What every inference route shares, whatever its wire format: the client-gone abort (a client
 * that hangs up before its stream starts cancels admission and prefill), the error that arrives
 * after the headers (a refusal after a wait in the queue, whose comments already started the
 * stream, travels inside it), the `x-route-decision` header (or, once headers are gone, a comment),
 * and the release of the session lease however the answer ends.
 */
export interface FrontDoor {
  ctx: RouteContext;
  pipeline: InferencePipeline;
  /** The request as the API parsed it; the door adds its id, logger, client, priority, trace and abort signal. */
  job: Omit<InferenceJob, "requestId" | "log" | "signal" | "clientId" | "priority" | "traceparent" | "onQueued">;
  /** The body's `priority`, if any (the `x-priority` header otherwise). */
  bodyPriority: number | undefined;
  /** A streaming answer: a wait in the queue starts the stream and shows its position as comments. */
  streaming: boolean;
  /** How an error travels inside a started stream, in this API's framing. */
  streamError(code: string, message: string): string;
  /** This API's terms for a refusal (default: as it is). */
  refusal?(err: unknown): unknown;
}

export interface OpenedDoor {
  started: StartedInference;
  /** The request's logger with its worker and session. */
  log: Logger;
  /** `x-route-decision` and `x-worker-id`, for a one-body answer. */
  headers: Record<string, string>;
  /** Starts a streamed answer: the status and headers, or the route decision as a comment when a queue wait sent them. */
  startStream(extra?: Record<string, string>): void;
}

export async function throughFrontDoor(d: FrontDoor, answer: (door: OpenedDoor) => Promise<void>): Promise<void> {
  const { ctx } = d;
  const clientGone = new AbortController();
  const onClose = () => {
    if (!ctx.res.writableFinished) clientGone.abort();
  };
  ctx.res.on("close", onClose);
  const priority = priorityOf(ctx, d.bodyPriority);
  let started: StartedInference;
  try {
    started = await d.pipeline.start({
      ...d.job, requestId: ctx.requestId, log: ctx.log, signal: clientGone.signal, clientId: ctx.clientId, priority,
      ...(d.streaming ? { onQueued: queueComments(ctx.res) } : {}),
      traceparent: traceparentOf(ctx),
    });
  } catch (err) {
    const refused = d.refusal === undefined ? err : d.refusal(err);
    if (!ctx.res.headersSent) throw refused;
    // Refused after waiting in the queue: the stream had started, so the error travels inside it.
    const e = toServingError(refused);
    if (!ctx.res.writableEnded && !ctx.res.destroyed) ctx.res.end(d.streamError(e.code, e.message));
    return;
  } finally {
    ctx.res.off("close", onClose);
  }
  const log = ctx.log.child({ worker_id: started.workerId, session_id: started.sessionId });
  const decision = routeDecisionHeader(started);
  const headers = { "x-route-decision": decision, "x-worker-id": started.workerId };
  try {
    await answer({
      started, log, headers,
      startStream: (extra = {}) => {
        if (ctx.res.headersSent) ctx.res.write(sseComment(`route ${decision}`));
        else ctx.res.writeHead(200, { ...SSE_HEADERS, ...headers, ...extra });
      },
    });
  } finally {
    started.lease.release();
  }
}

/**
 * `x-route-decision`: which worker, by which profile, with what scores (for "why this worker?"):
 * the pick's total and per-scorer scores, the runner-up, the conversation's rendezvous home, the
 * prompt blocks the pick holds of all, saturated candidates, a KV move to the pick, time queued, attempts.
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
  // The conversation's KV came from another worker: where from, tokens, what it was held in (or "prefilled"), ms the move took.
  const m = s.kvMoved;
  if (m !== undefined) parts.push(`kv_moved=${m.from}:${m.tokens}:${m.restored ? m.source : "prefilled"}:${Math.round(m.ms)}ms`);
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

/** The client's W3C `traceparent` (validated where it is used). */
export function traceparentOf(ctx: RouteContext): string | undefined {
  const h = ctx.req.headers.traceparent;
  return typeof h === "string" ? h : undefined;
}
