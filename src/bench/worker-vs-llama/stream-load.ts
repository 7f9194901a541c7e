import { setMaxListeners } from "node:events";
import { Agent } from "undici";
import { postJson, readSseEvents, type HttpResponse } from "../load-client.js";

/**
 * One repetition of the engine benchmark's load (the bench's shared load client underneath): N concurrent streams, each one request of exactly
 * `maxTokens` greedy tokens with the end of text banned, as a client sees them. Two targets:
 * our worker (POST /worker/prefill, then POST /worker/decode over SSE) and llama-server
 * (POST /completion with `stream: true`). Both are read with the same client code.
 *
 * tokens/s = all generated tokens / wall time from the first request's start to the last's end.
 * TTFT = from a stream's first request to its first token event.
 */
export interface LoadOptions {
  url: string;
  prompts: readonly string[];
  streams: number;
  maxTokens: number;
  /** Token ids banned so that every stream runs to `maxTokens` (end of text, and BOS for stories260K). */
  bannedTokens: readonly number[];
  /** Upper bound of one repetition (ms). */
  timeoutMs: number;
}

export interface LoadResult {
  tokens: number;
  wallMs: number;
  tokensPerSec: number;
  /** Per stream, ms. */
  ttftMs: number[];
}

export type Target = "worker" | "llama-server";

const agent = new Agent({ keepAliveTimeout: 30_000, connections: 256 });
let sessionCounter = 0;

export async function runStreams(target: Target, o: LoadOptions): Promise<LoadResult> {
  const signal = AbortSignal.timeout(o.timeoutMs);
  setMaxListeners(0, signal); // one listener per request of the repetition
  const start = performance.now();
  const results = await Promise.all(
    Array.from({ length: o.streams }, (_, i) => {
      const prompt = o.prompts[i % o.prompts.length]!;
      return target === "worker" ? workerStream(o, prompt, signal) : llamaServerStream(o, prompt, signal);
    }),
  );
  const wallMs = performance.now() - start;
  const tokens = results.reduce((a, r) => a + r.tokens, 0);
  return { tokens, wallMs, tokensPerSec: (tokens / wallMs) * 1000, ttftMs: results.map((r) => r.ttftMs) };
}

interface StreamResult {
  tokens: number;
  ttftMs: number;
}

async function workerStream(o: LoadOptions, prompt: string, signal: AbortSignal): Promise<StreamResult> {
  const t0 = performance.now();
  const sessionId = `bench-${process.pid}-${++sessionCounter}`;
  const logitBias = Object.fromEntries(o.bannedTokens.map((t) => [String(t), -100]));
  const prefill = await post(`${o.url}/worker/prefill`, {
    session_id: sessionId, prompt, max_tokens: o.maxTokens, sampling: { temperature: 0, logit_bias: logitBias },
  }, signal);
  const body = await prefill.body.text();
  if (prefill.statusCode !== 200) throw new Error(`worker prefill: ${prefill.statusCode} ${body}`);
  const decode = await post(`${o.url}/worker/decode`, { session_id: sessionId }, signal);
  return readStream(decode, t0, (e) => {
    if (e.finished === true) {
      if (e.reason !== "length") throw new Error(`worker stream ended early: ${JSON.stringify(e)}`);
      return "end";
    }
    return "token";
  });
}

async function llamaServerStream(o: LoadOptions, prompt: string, signal: AbortSignal): Promise<StreamResult> {
  const t0 = performance.now();
  const res = await post(`${o.url}/completion`, {
    prompt, n_predict: o.maxTokens, stream: true, temperature: 0, ignore_eos: true, cache_prompt: false,
    logit_bias: o.bannedTokens.map((t) => [t, false]),
  }, signal);
  return readStream(res, t0, (e) => (e.stop === true ? "end" : "token"));
}

async function post(url: string, body: unknown, signal: AbortSignal): Promise<HttpResponse> {
  const send = () => postJson(url, body, { dispatcher: agent, signal });
  try {
    return await send();
  } catch (err) {
    // A kept-alive connection the server closed just as it was reused (llama-server does so now and
    // then between repetitions): the request never reached it, so it is sent once more, on a new one.
    if ((err as { code?: string }).code !== "UND_ERR_SOCKET" || signal.aborted) throw err;
    return send();
  }
}

async function readStream(res: HttpResponse, t0: number, classify: (e: Record<string, unknown>) => "token" | "end"): Promise<StreamResult> {
  if (res.statusCode !== 200) throw new Error(`stream: ${res.statusCode} ${await res.body.text()}`);
  let tokens = 0;
  let ttftMs = -1;
  await readSseEvents(res.body, (data, now) => {
    if (data === "[DONE]") return;
    if (classify(JSON.parse(data) as Record<string, unknown>) === "end") return;
    if (tokens++ === 0) ttftMs = now - t0;
  });
  return { tokens, ttftMs };
}
