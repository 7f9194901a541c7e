import { randomUUID } from "node:crypto";
import type { Clock } from "../../common/clock.js";
import type { CoordinatorConfig } from "../../common/config.js";
import { sendJson, type HttpServer, type RouteContext } from "../../common/http-server.js";
import { ServingError } from "../../protocol/serving-error.js";
import { parseChatRequest, parseCompletionRequest, type OpenAiRequest } from "../../protocol/openai-api.js";
import {
  OpenAiChunks, finishReasonOf, openAiResponseBody, openAiStreamError, usageOf, type OpenAiResponseMeta,
} from "../../protocol/openai-stream.js";
import type { JsonObject } from "../../protocol/validate.js";
import { httpStatusOf, isErrorCode } from "../../protocol/error-mapping.js";
import type { InferenceJob, InferencePipeline } from "../pipeline/inference-pipeline.js";
import type { StreamFormat } from "../stream/relay.js";
import { queueComments, throughFrontDoor, traceparentOf, type FrontDoor } from "./front-door.js";
import { serveChoices } from "./openai-choices.js";
import type { ToolCall } from "../../protocol/tools/tool-call-output.js";
import { callFormatOf } from "../../protocol/tools/call-format.js";
import type { PrefillResponse } from "../../protocol/worker-api.js";
import { ToolCallStream } from "../../protocol/tools/tool-call-stream.js";
import { priorityOf } from "./request-priority.js";
import { SESSION_HEADER, conversationIdOf } from "./session-header.js";
import type { WorkerTable } from "../fleet/worker-table.js";
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
    await serve(ctx, d, parseCompletionRequest(await ctx.readJson(), d.config.maxTokensLimit, d.config.maxChoices));
  }, "openai");
  server.route("POST", "/v1/chat/completions", async (ctx) => {
    clientPreflight(ctx, d.preflight);
    await serve(ctx, d, parseChatRequest(await ctx.readJson(), d.config.maxTokensLimit, d.config.maxChoices));
  }, "openai");
}

async function serve(ctx: RouteContext, d: OpenAiRoutesDeps, req: OpenAiRequest): Promise<void> {
  const conversationId = conversationIdOf(ctx);
  const door: FrontDoor = {
    ctx, pipeline: d.pipeline, bodyPriority: req.priority, streaming: req.stream, streamError: openAiStreamError,
    refusal: (err: unknown) => inOpenAiTerms(err, req),
    job: {
      model: req.model, maxTokens: req.maxTokens, sampling: req.sampling,
      ...(req.messages !== undefined ? { messages: req.messages } : { prompt: req.prompt! }),
      ...(req.workerTools !== undefined ? { tools: req.workerTools } : {}),
      ...(conversationId !== undefined ? { conversationId } : {}),
      unknownModel: "model_not_found" as const, anyNameWhenSingleModel: false,
    },
  };
  if (req.n > 1) {
    await serveChoicesRequest(ctx, d, req, door.job);
    return;
  }
  await throughFrontDoor(door, async ({ started, log, headers: routeHeaders, startStream }) => {
    const meta: OpenAiResponseMeta = {
      kind: req.kind,
      id: `${req.kind === "chat" ? "chatcmpl" : "cmpl"}-${randomUUID().replaceAll("-", "")}`,
      created: Math.floor(d.clock.wallNow() / 1000),
      model: started.model,
      includeUsage: req.includeUsage,
    };
    const cached = started.prefill.cached_tokens ?? 0;
    const headers: Record<string, string> = { ...routeHeaders };
    if (conversationId !== undefined) headers[SESSION_HEADER] = conversationId;
    if (req.stream) {
      const chunks = new OpenAiChunks(meta);
      const calls = req.tools !== undefined ? new ToolCallStream(chunks, req.tools, newCallId, 0, callFormatOf(started.prefill.tool_syntax)) : undefined;
      const format: StreamFormat = {
        tokens: (texts, logprobs) => (calls !== undefined ? calls.tokens(texts, logprobs) : chunks.text(texts, logprobs)),
        end: (f) => (calls ?? chunks).end(finishReasonOf(f.reason), usageOf(f.promptTokens, f.completionTokens, cached)),
        error: openAiStreamError,
      };
      startStream(headers);
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
    const logprobs = req.sampling.top_logprobs !== undefined ? result.logprobs : undefined;
    const toolCalls = req.tools !== undefined ? toolCallsOf(result.text, req, started.prefill) : undefined;
    const usage = usageOf(f.promptTokens, f.completionTokens, cached);
    sendJson(ctx.res, 200, openAiResponseBody(meta, result.text, finishReasonOf(f.reason), usage, logprobs, toolCalls), headers);
  });
}

/**
 * OpenAI's `n` > 1 (openai-choices.ts): n sessions, so the front door's one lease does not fit;
 * the same client-gone abort, priority, queue comments and trace as the door's are set here.
 */
async function serveChoicesRequest(ctx: RouteContext, d: OpenAiRoutesDeps, req: OpenAiRequest, parsed: FrontDoor["job"]): Promise<void> {
  const clientGone = new AbortController();
  const onClose = () => {
    if (!ctx.res.writableFinished) clientGone.abort();
  };
  ctx.res.on("close", onClose);
  const job: InferenceJob = {
    ...parsed, requestId: ctx.requestId, log: ctx.log, signal: clientGone.signal, clientId: ctx.clientId,
    priority: priorityOf(ctx, req.priority),
    ...(req.stream ? { onQueued: queueComments(ctx.res) } : {}),
    traceparent: traceparentOf(ctx),
  };
  try {
    await serveChoices(ctx, d, req, job);
  } finally {
    ctx.res.off("close", onClose);
  }
}

/** The 24 characters after `call_` in a tool call's id. */
export function newCallId(): string {
  return randomUUID().replaceAll("-", "").slice(0, 24);
}

/** An answer's tool calls, in the format the worker's prefill answer names (call-format.ts); undefined when it is text. */
export function toolCallsOf(text: string, req: OpenAiRequest, prefill: PrefillResponse): ToolCall[] | undefined {
  return callFormatOf(prefill.tool_syntax).parse(text, new Set(req.tools!.tools.map((t) => t.name)), newCallId);
}

/**
 * Errors a worker reports name its own fields; a client of this API knows them by OpenAI's names
 * (`json_schema` → `response_format`, or `tools` when they built it, a chat's `prompt` → `messages`,
 * `max_tokens` → the field the client sent).
 */
export function inOpenAiTerms(err: unknown, req: OpenAiRequest): unknown {
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
