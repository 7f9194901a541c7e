/**
 * Which free slot a new session takes, so that it lands on the sequence holding the longest useful
 * prefix of its prompt without destroying more cache than it gains.
 *
 * For each free slot: `common` = tokens the slot holds that start the new prompt (what prefill will
 * reuse), `lost` = tokens of a kept sequence (kept-sequences.ts) beyond that prefix, which the new
 * prompt overwrites. A slot with no kept entry loses nothing (its stale tokens are nobody's cache).
 * Slots compare by, in order:
 *   1. tokens saved net of the cache lost, `common − lost`, when positive (a slot holding exactly
 *      a prefix of the prompt — the conversation's own last turn — saves all it holds);
 *   2. a slot that loses nothing over one that would evict a kept sequence;
 *   3. among kept sequences, the least recently used.
 * So a new conversation sharing only a system prompt takes an empty slot rather than evict another
 * conversation, and takes a kept slot only when it gains more than it destroys.
 */
export interface SlotView {
  /** Tokens the slot's sequence holds now. */
  readonly held: readonly number[];
  /** Whether a kept sequence (a published cache entry) lives there. */
  readonly kept: boolean;
  /** The kept entry's recency: 0 for the least recently used. */
  readonly recency: number;
}

/** Length of the common prefix of two token lists. */
export function commonPrefix(a: readonly number[], b: readonly number[]): number {
  const n = Math.min(a.length, b.length);
  let i = 0;
  while (i < n && a[i] === b[i]) i++;
  return i;
}

/** Weights that make the three criteria lexicographic (contexts stay below 2^30 tokens). */
const NET_UNIT = 2 ** 20;
const LOSSLESS_BONUS = 2 ** 19;
const MAX_RECENCY = 2 ** 18;

/** A number, higher is better, ordering slots by the rule above. */
export function slotRank(view: SlotView, prompt: readonly number[]): number {
  const common = commonPrefix(view.held, prompt);
  const lost = view.kept ? view.held.length - common : 0;
  const net = Math.max(0, common - lost);
  if (!view.kept || lost === 0) return net * NET_UNIT + LOSSLESS_BONUS;
  return net * NET_UNIT + (MAX_RECENCY - Math.min(view.recency, MAX_RECENCY - 1));
}
