import type { LogprobEntry, TokenLogprobs } from "../engine/engine.js";
import { wireLogprob, type LogprobContent, type TopLogprob } from "../protocol/token-logprobs.js";

/** An engine's token logprobs as the worker's wire entry (OpenAI's chat shape, token-logprobs.ts). */
const utf8 = new TextDecoder("utf-8", { fatal: false });

function topOf(e: LogprobEntry): TopLogprob {
  return { token: utf8.decode(e.bytes), logprob: wireLogprob(e.logprob), bytes: Array.from(e.bytes) };
}

export function logprobContentOf(t: TokenLogprobs): LogprobContent {
  return { ...topOf(t), top_logprobs: t.top.map(topOf) };
}
