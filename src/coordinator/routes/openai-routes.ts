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
import type { InferencePipeline } from "../pipeline/inference-pipeline.js";
import type { StreamFormat } from "../stream/relay.js";
import { throughFrontDoor } from "./front-door.js";
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
    await serve(ctx, d, parseCompletionRequest(await ctx.readJson(), d.config.maxTokensLimit));
  }, "openai");
  server.route("POST", "/v1/chat/completions", async (ctx) => {
    clientPreflight(ctx, d.preflight);
    await serve(ctx, d, parseChatRequest(await ctx.readJson(), d.config.maxTokensLimit));
  }, "openai");
}

async function serve(ctx: RouteContext, d: OpenAiRoutesDeps, req: OpenAiRequest): Promise<void> {
  const conversationId = conversationIdOf(ctx);
  const door = {
    ctx, pipeline: d.pipeline, bodyPriority: req.priority, streaming: req.stream, streamError: openAiStreamError,
    refusal: (err: unknown) => inOpenAiTerms(err, req),
    job: {
      model: req.model, maxTokens: req.maxTokens, sampling: req.sampling,
      ...(req.messages !== undefined ? { messages: req.messages } : { prompt: req.prompt! }),
      ...(conversationId !== undefined ? { conversationId } : {}),
      unknownModel: "model_not_found" as const, anyNameWhenSingleModel: false,
    },
  };
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
      const format: StreamFormat = {
        tokens: (texts) => chunks.text(texts),
        end: (f) => chunks.end(finishReasonOf(f.reason), usageOf(f.promptTokens, f.completionTokens, cached)),
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
    sendJson(ctx.res, 200, openAiResponseBody(meta, result.text, finishReasonOf(f.reason), usageOf(f.promptTokens, f.completionTokens, cached)), headers);
  });
}

/**
 * Errors a worker reports name its own fields; a client of this API knows them by OpenAI's names
 * (`json_schema` → `response_format`, a chat's `prompt` → `messages`, `max_tokens` → the field
 * the client sent).
 */
function inOpenAiTerms(err: unknown, req: OpenAiRequest): unknown {
  if (!(err instanceof ServingError) || err.param === undefined) return err;
  const names: JsonObject = {
    json_schema: "response_format",
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
