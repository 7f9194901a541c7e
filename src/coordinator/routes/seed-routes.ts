import type { CoordinatorConfig } from "../../common/config.js";
import type { HttpServer, RouteContext } from "../../common/http-server.js";
import { parseInferRequest } from "../../protocol/seed-api.js";
import { seedEndEvent, seedErrorEvent, seedTokenEvents } from "../../protocol/seed-stream.js";
import type { InferencePipeline } from "../pipeline/inference-pipeline.js";
import type { StreamFormat } from "../stream/relay.js";
import { throughFrontDoor } from "./front-door.js";
import { conversationIdOf } from "./session-header.js";
import { clientPreflight, type PreflightDeps } from "./client-preflight.js";

/** `POST /coordinator/infer`: the seed's client API over the shared pipeline. */
const seedFormat: StreamFormat = {
  tokens: seedTokenEvents,
  end: (f) => seedEndEvent(f.reason, f.promptTokens, f.completionTokens),
  error: seedErrorEvent,
};

export function registerSeedRoutes(server: HttpServer, pipeline: InferencePipeline, config: CoordinatorConfig, preflight: PreflightDeps): void {
  server.route("POST", "/coordinator/infer", async (ctx: RouteContext) => {
    // Rate and in-flight caps before the body is read.
    clientPreflight(ctx, preflight);
    const body = parseInferRequest(await ctx.readJson(), config.maxTokensLimit);
    const conversationId = conversationIdOf(ctx);
    const door = {
      ctx, pipeline, bodyPriority: body.priority, streaming: true, streamError: seedFormat.error,
      job: {
        model: body.model, prompt: body.prompt, maxTokens: body.max_tokens, sampling: body.sampling,
        unknownModel: "unknown_model" as const, anyNameWhenSingleModel: true,
        ...(conversationId !== undefined ? { conversationId } : {}),
      },
    };
    await throughFrontDoor(door, async ({ started, log, startStream }) => {
      startStream();
      const result = await pipeline.stream(started, ctx.res, seedFormat, log);
      log.info({ termination: result.termination, completion_tokens: result.tokens }, "stream.end");
    });
  });
}

// Kept importable from here for callers that knew them as the seed routes'.
export { queueComments, routeDecisionHeader, traceparentOf } from "./front-door.js";
