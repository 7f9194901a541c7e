import type { EngineSequence, SequenceState } from "../engine/engine.js";

/**
 * A sequence's KV state once it is idle. A turn's session ends when its last token reached the
 * client, which can be a moment before the engine's own end of that generation (its last events,
 * a queued cancel or grant): saving is retried on the next turns of the event loop, at most
 * `tries` times (about 1 ms each), and gives up with undefined. The state is returned only when it
 * holds exactly `expected` (what the kept sequence held when it was evicted): a slot taken by other
 * work in between is never saved under the old conversation's name.
 */
export async function saveWhenIdle(seq: EngineSequence, expected: readonly number[], tries = 50): Promise<SequenceState | undefined> {
  if (seq.saveState === undefined || expected.length === 0) return undefined;
  for (let i = 0; i < tries; i++) {
    const state = seq.saveState();
    if (state !== undefined) return sameTokens(state.tokens, expected) ? state : undefined;
    if (!sameTokens(seq.heldTokens(), expected)) return undefined;
    await new Promise((r) => setTimeout(r, 1));
  }
  return undefined;
}

function sameTokens(a: readonly number[], b: readonly number[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
