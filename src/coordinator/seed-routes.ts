import type { CoordinatorConfig } from "../common/config.js";
import type { HttpServer, RouteContext } from "../common/http-server.js";
import { parseInferRequest } from "../protocol/seed-api.js";
import { seedEndEvent, seedErrorEvent, seedTokenEvents } from "../protocol/seed-stream.js";
import { SSE_HEADERS } from "../protocol/sse.js";
import type { InferencePipeline, StartedInference } from "./inference-pipeline.js";
import type { StreamFormat } from "./relay.js";
import { conversationIdOf } from "./session-header.js";

/** `POST /coordinator/infer`: the seed's client API over the shared pipeline. */
const seedFormat: StreamFormat = {
  tokens: seedTokenEvents,
  end: (f) => seedEndEvent(f.reason, f.promptTokens, f.completionTokens),
  error: seedErrorEvent,
};

/** `x-route-decision`: which worker, by which profile, with what scores (for "why this worker?"). */
export function routeDecisionHeader(s: StartedInference): string {
  const d = s.decision;
  const parts = [`worker=${s.workerId}`, `profile=${d.profile}`, `score=${d.pick.total.toFixed(4)}`];
  for (const [k, v] of Object.entries(d.pick.scores)) parts.push(`${k}=${v.toFixed(4)}`);
  if (d.runnerUp) parts.push(`runner_up=${d.runnerUp.candidate.id}:${d.runnerUp.total.toFixed(4)}`);
  if (s.attempts > 1) parts.push(`attempts=${s.attempts}`);
  return parts.join(";");
}

export function registerSeedRoutes(server: HttpServer, pipeline: InferencePipeline, config: CoordinatorConfig): void {
  server.route("POST", "/coordinator/infer", async (ctx: RouteContext) => {
    const body = parseInferRequest(await ctx.readJson(), config.maxTokensLimit);
    const conversationId = conversationIdOf(ctx);
    const clientGone = new AbortController();
    const onClose = () => {
      if (!ctx.res.writableFinished) clientGone.abort();
    };
    ctx.res.on("close", onClose);
    const started = await pipeline.start({
      requestId: ctx.requestId, log: ctx.log, model: body.model, prompt: body.prompt, maxTokens: body.max_tokens,
      sampling: body.sampling, signal: clientGone.signal, unknownModel: "unknown_model", anyNameWhenSingleModel: true,
      clientId: ctx.clientId,
      ...(conversationId !== undefined ? { conversationId } : {}),
      traceparent: traceparentOf(ctx),
    });
    ctx.res.off("close", onClose);
    const log = ctx.log.child({ worker_id: started.workerId, session_id: started.sessionId });
    try {
      ctx.res.writeHead(200, { ...SSE_HEADERS, "x-route-decision": routeDecisionHeader(started), "x-worker-id": started.workerId });
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
