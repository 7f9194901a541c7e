/**
 * Logprobs on the wire. The worker sends each token's entry in OpenAI's chat shape (a token event's
 * optional `logprobs` field, worker-api.ts), so the coordinator relays chat entries as they come and
 * only rewrites them for the completions API's legacy shape. `token` is the token's bytes decoded
 * as UTF-8 (a token that ends inside a character shows U+FFFD there); `bytes` are exact.
 */
export interface TopLogprob {
  token: string;
  /** Natural log of the probability; never -Infinity on the wire (JSON has none): LOGPROB_FLOOR. */
  logprob: number;
  bytes: number[];
}

export interface LogprobContent extends TopLogprob {
  top_logprobs: TopLogprob[];
}

/** What OpenAI reports for a token of probability 0. */
export const LOGPROB_FLOOR = -9999;

/** A finite logprob for JSON. */
export function wireLogprob(lp: number): number {
  return Number.isFinite(lp) ? lp : LOGPROB_FLOOR;
}

/** The completions API's (legacy) `logprobs` object of some tokens. */
export interface CompletionLogprobs {
  tokens: string[];
  token_logprobs: number[];
  top_logprobs: Record<string, number>[];
  text_offset: number[];
}

/**
 * Chat entries as the completions API's shape; `offset` is the character offset (UTF-16 units,
 * as JavaScript strings count) of the first token in the answer's text.
 */
export function completionLogprobsOf(entries: readonly LogprobContent[], offset: number): CompletionLogprobs {
  const out: CompletionLogprobs = { tokens: [], token_logprobs: [], top_logprobs: [], text_offset: [] };
  let at = offset;
  for (const e of entries) {
    out.tokens.push(e.token);
    out.token_logprobs.push(e.logprob);
    const top: Record<string, number> = {};
    // Two tokens may decode to the same string (both partial characters): the likelier one stays.
    for (const t of e.top_logprobs) if (!(t.token in top)) top[t.token] = t.logprob;
    out.top_logprobs.push(top);
    out.text_offset.push(at);
    at += e.token.length;
  }
  return out;
}

/** Reads a worker event's `logprobs` field: a list of entries, or undefined when absent or malformed. */
export function readLogprobContent(v: unknown): LogprobContent[] | undefined {
  if (!Array.isArray(v)) return undefined;
  for (const e of v) {
    if (typeof e !== "object" || e === null || typeof (e as LogprobContent).token !== "string" || typeof (e as LogprobContent).logprob !== "number") return undefined;
    if (!Array.isArray((e as LogprobContent).top_logprobs) || !Array.isArray((e as LogprobContent).bytes)) return undefined;
  }
  return v as LogprobContent[];
}
