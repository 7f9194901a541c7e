import { ServingError } from "../../protocol/serving-error.js";
import type { Candidate } from "../scheduler/types.js";

/**
 * Whether a request can ever fit a worker serving its model, whatever their load: a request that
 * the KV filters would drop on every worker forever is refused at once, naming the limit, rather
 * than waiting out QUEUE_TIMEOUT_MS. `tokens` is the estimate the filters use (prompt + max_tokens);
 * `maxTokens` is the client's own (undefined: the rest of the context). Only fresh workers of the
 * model count; with none, the caller's usual `no_workers` answer stands.
 */
export function neverFits(candidates: readonly Candidate[], model: string, tokens: number, maxTokens: number | undefined): ServingError | undefined {
  const serving = candidates.filter((c) => c.fresh && c.model === model);
  if (serving.length === 0) return undefined;
  const largestContext = Math.max(...serving.map((c) => c.contextSize));
  // max_tokens alone at or beyond every context can never fit (no estimate involved).
  if (maxTokens !== undefined && largestContext > 0 && maxTokens >= largestContext) {
    return new ServingError("context_length_exceeded",
      `max_tokens (${maxTokens}) and the prompt exceed the context of every worker serving ${model} (largest: ${largestContext} tokens)`,
      { param: "max_tokens", details: { context_size: largestContext } });
  }
  const fits = serving.some((c) => {
    const kv = tokens * c.kvBytesPerToken;
    return kv <= c.maxSessionKvBytes && kv <= c.maxKvBytes;
  });
  if (fits) return undefined;
  const largestSession = Math.max(...serving.map((c) => Math.min(c.maxSessionKvBytes, c.maxKvBytes)));
  const perToken = Math.min(...serving.map((c) => c.kvBytesPerToken));
  return new ServingError("session_kv_limit_exceeded",
    `the request (about ${tokens} tokens with max_tokens) needs more KV cache than any worker serving ${model} allows one session (largest: ${largestSession} bytes, about ${Math.floor(largestSession / Math.max(1, perToken))} tokens)`,
    { param: "max_tokens", details: { kv_limit_bytes: largestSession } });
}
