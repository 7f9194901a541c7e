import { randomUUID } from "node:crypto";
import { EventEmitter } from "node:events";
import type { ServerResponse } from "node:http";
import { sendJson, type RouteContext } from "../../common/http-server.js";
import { httpStatusOf, isErrorCode, toServingError } from "../../protocol/error-mapping.js";
import { ServingError } from "../../protocol/serving-error.js";
import type { OpenAiRequest } from "../../protocol/openai-api.js";
import {
  OpenAiChunks, finishReasonOf, openAiChoicesBody, openAiStreamError, usageOf, type OpenAiChoice, type OpenAiResponseMeta,
} from "../../protocol/openai-stream.js";
import { SSE_HEADERS } from "../../protocol/sse.js";
import type { InferenceJob, StartedInference } from "../pipeline/inference-pipeline.js";
import type { FinalInfo, StreamFormat } from "../stream/relay.js";
import { routeDecisionHeader } from "./front-door.js";
import { callFormatOf } from "../../protocol/tools/call-format.js";
import { ToolCallStream } from "../../protocol/tools/tool-call-stream.js";
import { inOpenAiTerms, newCallId, toolCallsOf, type OpenAiRoutesDeps } from "./openai-routes.js";

/**
 * OpenAI's `n`: n choices of one prompt, each its own session (so admission, the session count and
 * the KV reservation count every choice exactly, through the same pipeline as one choice), each
 * with its own sampling seed (`seed + i` when the request gives a seed).
 *
 * The prompt is evaluated once: the first choice is prefilled alone; the others are pinned to its
 * worker, whose engine finds the prompt in the first choice's sequence and copies that KV
 * (llama_memory_seq_cp in the native engine) instead of evaluating it again; their prefills report
 * the prompt as cached. Why not one worker request carrying n: the worker's session table, slot
 * pool, KV accounting, cancel, stall detection and failover are all per session, and n sessions
 * reuse them unchanged; the one thing sharing needed, the copy, lives in the engine.
 *
 * A request whose n exceeds what one worker runs at once (its PARALLEL) is refused (400, `n`).
 * The usage counts the prompt once and every choice's completion tokens.
 */
export async function serveChoices(ctx: RouteContext, d: OpenAiRoutesDeps, req: OpenAiRequest, job: InferenceJob): Promise<void> {
  const n = req.n;
  const model = d.pipeline.resolveModel(req.model, "model_not_found", false);
  const widest = Math.max(0, ...d.pipeline.snapshot().filter((c) => c.model === model && c.fresh && !c.draining).map((c) => c.slotsTotal));
  if (widest > 0 && n > widest) {
    throw new ServingError("invalid_field", `'n' is ${n}, but a worker of model '${model}' runs at most ${widest} sessions at once (PARALLEL); the choices of one prompt share a worker`, { param: "n" });
  }
  const started: StartedInference[] = [];
  const releaseAll = () => {
    for (const s of started) {
      s.abortUpstream();
      s.lease.release();
    }
  };
  try {
    started.push(await d.pipeline.start(choiceJob(job, req, 0, undefined)));
    const pin = started[0]!.workerId;
    const rest = await Promise.allSettled(Array.from({ length: n - 1 }, (_, k) => d.pipeline.start(choiceJob(job, req, k + 1, pin))));
    let failure: unknown;
    for (const r of rest) {
      if (r.status === "fulfilled") started.push(r.value);
      else failure ??= r.reason;
    }
    if (failure !== undefined) throw failure;
  } catch (err) {
    releaseAll();
    if (!ctx.res.headersSent) throw inOpenAiTerms(err, req);
    const e = toServingError(inOpenAiTerms(err, req));
    if (!ctx.res.writableEnded && !ctx.res.destroyed) ctx.res.end(openAiStreamError(e.code, e.message));
    return;
  }
  const first = started[0]!;
  const log = ctx.log.child({ worker_id: first.workerId, session_ids: started.map((s) => s.sessionId), n });
  const meta: OpenAiResponseMeta = {
    kind: req.kind,
    id: `${req.kind === "chat" ? "chatcmpl" : "cmpl"}-${randomUUID().replaceAll("-", "")}`,
    created: Math.floor(d.clock.wallNow() / 1000),
    model: first.model,
    includeUsage: req.includeUsage,
  };
  const cached = first.prefill.cached_tokens ?? 0;
  const headers: Record<string, string> = { "x-route-decision": routeDecisionHeader(first), "x-worker-id": first.workerId };
  const wantLogprobs = req.sampling.top_logprobs !== undefined;
  try {
    if (req.stream) {
      await streamChoices(ctx, d, req, started, meta, headers, cached, log);
      return;
    }
    const results = await Promise.all(started.map((s) => d.pipeline.collect(s, ctx.res, log)));
    if (results.some((r) => r.termination === "client_disconnect")) return;
    const failed = results.find((r) => r.termination === "worker_error");
    if (failed !== undefined) {
      const code = failed.error?.code;
      if (code !== undefined && isErrorCode(code) && httpStatusOf(code) < 500) throw new ServingError(code, failed.error!.message);
      throw new ServingError("worker_failed", `the worker failed while generating: ${failed.error!.message}`);
    }
    const choices: OpenAiChoice[] = results.map((r, i) => {
      const toolCalls = req.tools !== undefined ? toolCallsOf(r.text, req, started[i]!.prefill) : undefined;
      return {
        text: r.text, finish: finishReasonOf(r.final!.reason), logprobs: wantLogprobs ? r.logprobs : undefined,
        ...(toolCalls !== undefined ? { toolCalls } : {}),
      };
    });
    const completion = results.reduce((t, r) => t + r.final!.completionTokens, 0);
    log.info({ completion_tokens: completion, api: "openai" }, "stream.end");
    sendJson(ctx.res, 200, openAiChoicesBody(meta, choices, usageOf(results[0]!.final!.promptTokens, completion, cached)), headers);
  } finally {
    for (const s of started) s.lease.release();
  }
}

/** Choice `i` of the request: its seed, and after the first, pinned to the first's worker. */
function choiceJob(job: InferenceJob, req: OpenAiRequest, i: number, pin: string | undefined): InferenceJob {
  const seed = req.sampling.seed;
  const sampling = seed === undefined || i === 0 ? req.sampling : { ...req.sampling, seed: seed + i };
  if (pin === undefined) return { ...job, sampling };
  // Only the first choice is the conversation's turn (kept for its next turn) and shows queue progress.
  const { conversationId: _conversation, onQueued: _queued, ...rest } = job;
  return { ...rest, sampling, pinWorker: pin };
}

/** The n relays write to one response, each through a sink that forwards all but the end. */
async function streamChoices(
  ctx: RouteContext, d: OpenAiRoutesDeps, req: OpenAiRequest, started: StartedInference[], meta: OpenAiResponseMeta,
  headers: Record<string, string>, cached: number, log: RouteContext["log"],
): Promise<void> {
  const chunks = new OpenAiChunks(meta);
  if (!ctx.res.headersSent) ctx.res.writeHead(200, { ...SSE_HEADERS, ...headers });
  for (let i = 0; i < started.length; i++) ctx.res.write(chunks.role(i));
  const finals: (FinalInfo | undefined)[] = [];
  let failed = false;
  const results = await Promise.all(started.map((s, i) => {
    // Each choice decides on its own whether it is text or tool calls.
    const calls = req.tools !== undefined ? new ToolCallStream(chunks, req.tools, newCallId, i, callFormatOf(s.prefill.tool_syntax)) : undefined;
    const format: StreamFormat = {
      tokens: (texts, logprobs) => (calls !== undefined ? calls.tokens(texts, logprobs) : chunks.text(texts, logprobs, i)),
      end: (f) => {
        finals[i] = f;
        return calls !== undefined ? calls.finish(finishReasonOf(f.reason)) : chunks.finish(finishReasonOf(f.reason), i);
      },
      error: (code, message) => {
        failed = true;
        return openAiStreamError(code, message);
      },
    };
    return d.pipeline.stream(s, new ChoiceSink(ctx.res) as unknown as ServerResponse, format, log.child({ choice: i }));
  }));
  const completion = finals.reduce((t, f) => t + (f?.completionTokens ?? 0), 0);
  log.info({ terminations: results.map((r) => r.termination), completion_tokens: completion, api: "openai" }, "stream.end");
  if (ctx.res.writableEnded || ctx.res.destroyed) return;
  if (failed || finals.some((f) => f === undefined)) {
    ctx.res.end();
    return;
  }
  ctx.res.end(chunks.done(usageOf(finals[0]!.promptTokens, completion, cached)));
}

/**
 * What a relay needs of a response (write, end, drain and close), over the response that n relays
 * share: a relay's `end` writes its last chunk and leaves the response open for the others.
 */
class ChoiceSink extends EventEmitter {
  writableFinished = false;

  constructor(private readonly res: ServerResponse) {
    super();
    res.on("drain", () => this.emit("drain"));
    res.on("close", () => this.emit("close"));
  }

  get destroyed(): boolean {
    return this.res.destroyed;
  }

  get writableEnded(): boolean {
    return this.writableFinished || this.res.writableEnded;
  }

  write(chunk: string): boolean {
    if (this.res.destroyed || this.res.writableEnded) return true;
    return this.res.write(chunk);
  }

  end(tail?: string): void {
    if (tail !== undefined && tail !== "" && !this.res.destroyed && !this.res.writableEnded) this.res.write(tail);
    this.writableFinished = true;
  }

  /** A relay gives up on the client (write timeout): the shared response goes with it. */
  destroy(): void {
    this.res.destroy();
  }
}
