/**
 * The wire format's size limits, shared by every API that reads a prompt (seed, OpenAI, worker).
 * A leaf of its own so that the parsers that check a limit need not import each other.
 */

/** A prompt, or all of a conversation's message contents together, in UTF-16 code units. */
export const MAX_PROMPT_CHARS = 4_000_000;
/** The largest `max_tokens` any API accepts (a worker still caps it at its context). */
export const MAX_TOKENS_CEILING = 100_000_000;
/** Priorities range over ±MAX_PRIORITY (0 by default); lower values are served first. */
export const MAX_PRIORITY = 1_000_000;
