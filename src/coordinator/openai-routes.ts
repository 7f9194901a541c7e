import { randomUUID } from "node:crypto";
import type { Clock } from "../common/clock.js";
import type { CoordinatorConfig } from "../common/config.js";
import { sendJson, type HttpServer, type RouteContext } from "../common/http-server.js";
import { ServingError } from "../common/serving-error.js";
import { parseChatRequest, parseCompletionRequest, type OpenAiRequest } from "../protocol/openai-api.js";
import {
  OpenAiChunks, finishReasonOf, openAiResponseBody, openAiStreamError, usageOf, type OpenAiResponseMeta,
} from "../protocol/openai-stream.js";
import type { JsonObject } from "../protocol/validate.js";
import { parseToolCalls } from "../protocol/tools/tool-call-output.js";
import { ToolCallStream } from "../protocol/tools/tool-call-stream.js";
import { SSE_HEADERS, sseComment } from "../protocol/sse.js";
import { httpStatusOf, isErrorCode, toServingError } from "../common/error-mapping.js";
import type { InferencePipeline, StartedInference } from "./inference-pipeline.js";
import type { StreamFormat } from "./relay.js";
import { priorityOf } from "./request-priority.js";
import { queueComments, routeDecisionHeader, traceparentOf } from "./seed-routes.js";
import { SESSION_HEADER, conversationIdOf } from "./session-header.js";
import type { WorkerTable } from "./worker-table.js";
import { clientPreflight, type PreflightDeps } from "./client-preflight.js";

/**
 * The OpenAI-compatible API, a second front door over the same pipeline as the seed's: admission,
 * scheduling, prefill retries and the relay's backpressure are shared; only the wire format
 * differs. `GET /v1/models`, `POST /v1/completions`, `POST /v1/chat/completions` (streamed or
 * not). Errors use OpenAI's shape through the routes' `openai` dialect; an unknown model is 404.
 */
export interface OpenAiRoutesDeps {
  pipeline: InferencePipeline;
  config: CoordinatorConfig;
  table: WorkerTable;
  clock: Clock;
  preflight: PreflightDeps;
}

export const OWNED_BY = "inference-engine";

export function registerOpenAiRoutes(server: HttpServer, d: OpenAiRoutesDeps): void {
  const startedS = Math.floor(d.clock.wallNow() / 1000);
  const modelList = () =>
    d.table.modelInfos().map((m) => ({ id: m.id, object: "model", created: m.created ?? startedS, owned_by: OWNED_BY, aliases: m.aliases }));

  server.route("GET", "/v1/models", (ctx) => sendJson(ctx.res, 200, { object: "list", data: modelList() }), "openai");
  server.route(
    "GET",
    "/v1/models/:model",
    (ctx) => {
      const name = ctx.params.model!;
      const id = d.table.modelFor(name);
      const found = id === undefined ? undefined : modelList().find((m) => m.id === id);
      if (found === undefined) throw new ServingError("model_not_found", `model '${name}' is not served`, { param: "model" });
      sendJson(ctx.res, 200, found);
    },
    "openai",
  );
  // Rate and in-flight caps before the body is read (client-preflight.ts).
  server.route("POST", "/v1/completions", async (ctx) => {
    clientPreflight(ctx, d.preflight);
    await serve(ctx, d, parseCompletionRequest(await ctx.readJson(), d.config.maxTokensLimit));
  }, "openai");
  server.route("POST", "/v1/chat/completions", async (ctx) => {
    clientPreflight(ctx, d.preflight);
    await serve(ctx, d, parseChatRequest(await ctx.readJson(), d.config.maxTokensLimit));
  }, "openai");
}

async function serve(ctx: RouteContext, d: OpenAiRoutesDeps, req: OpenAiRequest): Promise<void> {
  const conversationId = conversationIdOf(ctx);
  const clientGone = new AbortController();
  const onClose = () => {
    if (!ctx.res.writableFinished) clientGone.abort();
  };
  ctx.res.on("close", onClose);
  const priority = priorityOf(ctx, req.priority);
  let started: StartedInference;
  try {
    started = await d.pipeline.start({
      requestId: ctx.requestId, log: ctx.log, model: req.model, maxTokens: req.maxTokens, sampling: req.sampling,
      ...(req.messages !== undefined ? { messages: req.messages } : { prompt: req.prompt! }),
      ...(conversationId !== undefined ? { conversationId } : {}),
      ...(req.stream ? { onQueued: queueComments(ctx.res) } : {}),
      signal: clientGone.signal, unknownModel: "model_not_found", anyNameWhenSingleModel: false, clientId: ctx.clientId, priority,
      traceparent: traceparentOf(ctx),
    });
  } catch (err) {
    if (!ctx.res.headersSent) throw inOpenAiTerms(err, req);
    // Refused after waiting in the queue: the stream had started, so the error travels inside it.
    const e = toServingError(inOpenAiTerms(err, req));
    if (!ctx.res.writableEnded && !ctx.res.destroyed) ctx.res.end(openAiStreamError(e.code, e.message));
    return;
  } finally {
    ctx.res.off("close", onClose);
  }
  const log = ctx.log.child({ worker_id: started.workerId, session_id: started.sessionId });
  const meta: OpenAiResponseMeta = {
    kind: req.kind,
    id: `${req.kind === "chat" ? "chatcmpl" : "cmpl"}-${randomUUID().replaceAll("-", "")}`,
    created: Math.floor(d.clock.wallNow() / 1000),
    model: started.model,
    includeUsage: req.includeUsage,
  };
  const cached = started.prefill.cached_tokens ?? 0;
  const headers: Record<string, string> = { "x-route-decision": routeDecisionHeader(started), "x-worker-id": started.workerId };
  if (conversationId !== undefined) headers[SESSION_HEADER] = conversationId;
  try {
    if (req.stream) {
      const chunks = new OpenAiChunks(meta);
      const calls = req.tools !== undefined ? new ToolCallStream(chunks, req.tools, newCallId) : undefined;
      const format: StreamFormat = {
        tokens: (texts) => (calls !== undefined ? calls.tokens(texts) : chunks.text(texts)),
        end: (f) => (calls ?? chunks).end(finishReasonOf(f.reason), usageOf(f.promptTokens, f.completionTokens, cached)),
        error: openAiStreamError,
      };
      if (ctx.res.headersSent) ctx.res.write(sseComment(`route ${headers["x-route-decision"]}`));
      else ctx.res.writeHead(200, { ...SSE_HEADERS, ...headers });
      ctx.res.write(chunks.role());
      const result = await d.pipeline.stream(started, ctx.res, format, log);
      log.info({ termination: result.termination, completion_tokens: result.tokens, api: "openai" }, "stream.end");
      return;
    }
    const result = await d.pipeline.collect(started, ctx.res, log);
    log.info({ termination: result.termination, completion_tokens: result.tokens, api: "openai" }, "stream.end");
    if (result.termination === "client_disconnect") return;
    if (result.termination === "worker_error") {
      // The request's own fault found while generating (a grammar dead end): the client's 4xx.
      const code = result.error?.code;
      if (code !== undefined && isErrorCode(code) && httpStatusOf(code) < 500) throw new ServingError(code, result.error!.message);
      throw new ServingError("worker_failed", `the worker failed while generating: ${result.error!.message}`);
    }
    const f = result.final!;
    const toolCalls = req.tools !== undefined ? parseToolCalls(result.text, new Set(req.tools.tools.map((t) => t.name)), newCallId) : undefined;
    const usage = usageOf(f.promptTokens, f.completionTokens, cached);
    sendJson(ctx.res, 200, openAiResponseBody(meta, result.text, finishReasonOf(f.reason), usage, toolCalls), headers);
  } finally {
    started.lease.release();
  }
}

/** The 24 characters after `call_` in a tool call's id. */
function newCallId(): string {
  return randomUUID().replaceAll("-", "").slice(0, 24);
}

/**
 * Errors a worker reports name its own fields; a client of this API knows them by OpenAI's names
 * (`json_schema` → `response_format`, or `tools` when they built it, a chat's `prompt` → `messages`,
 * `max_tokens` → the field the client sent).
 */
function inOpenAiTerms(err: unknown, req: OpenAiRequest): unknown {
  if (!(err instanceof ServingError) || err.param === undefined) return err;
  const names: JsonObject = {
    // With tools, the grammar and schema the worker got were built from them (openai-api.ts).
    json_schema: req.tools !== undefined ? "tools" : "response_format",
    grammar: req.tools !== undefined ? "tools" : "grammar",
    prompt: req.kind === "chat" ? "messages" : "prompt",
    max_tokens: req.maxTokensParam,
  };
  const to = names[err.param];
  if (typeof to !== "string" || to === err.param) return err;
  return new ServingError(err.code, err.message.replaceAll(`'${err.param}'`, `'${to}'`), {
    param: to, cause: err,
    ...(err.details !== undefined ? { details: err.details } : {}),
    ...(err.retryAfterS !== undefined ? { retryAfterS: err.retryAfterS } : {}),
  });
}
