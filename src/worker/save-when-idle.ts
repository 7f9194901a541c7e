import type { EngineSequence, SequenceState } from "../engine/engine.js";

/**
 * A sequence's KV state once it is idle. A turn's session ends when its last token reached the
 * client, which can be a moment before the engine's own end of that generation (its last events,
 * a queued cancel or grant), and the engine saves only between decode steps (a step of a long
 * prompt batch can take seconds; the event loop never blocks on it): saving is retried every
 * millisecond or so for at most `waitMs`, then gives up with undefined. The state is returned only when it
 * holds exactly `expected` (what the kept sequence held when it was evicted): a slot taken by other
 * work in between is never saved under the old conversation's name.
 */
export async function saveWhenIdle(seq: EngineSequence, expected: readonly number[], waitMs = BUSY_WAIT_MS): Promise<SequenceState | undefined> {
  if (seq.saveState === undefined || expected.length === 0) return undefined;
  const deadline = Date.now() + waitMs;
  while (Date.now() <= deadline) {
    const state = seq.saveState();
    if (state !== undefined) return sameTokens(state.tokens, expected) ? state : undefined;
    if (!sameTokens(seq.heldTokens(), expected)) return undefined;
    await new Promise((r) => setTimeout(r, 1));
  }
  return undefined;
}

/** Longest a save or restore waits for the decode loop's gap between steps (ms). */
export const BUSY_WAIT_MS = 30_000;

/**
 * Restores `state` into the idle sequence, retried while the engine is busy (between steps only,
 * like saveWhenIdle); false when refused (the state does not fit) or still busy after `waitMs`.
 */
export async function restoreWhenIdle(seq: EngineSequence, state: SequenceState, stillWanted: () => boolean, waitMs = BUSY_WAIT_MS): Promise<boolean> {
  if (seq.restoreState === undefined) return false;
  const deadline = Date.now() + waitMs;
  while (stillWanted()) {
    const before = seq.heldTokens();
    if (seq.restoreState(state)) return true;
    if (seq.heldTokens() !== before) return false; // refused: the sequence was emptied
    if (Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, 1));
  }
  return false;
}

function sameTokens(a: readonly number[], b: readonly number[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
