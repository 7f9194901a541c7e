import type { EngineSequence, SequenceState } from "../engine/engine.js";

/**
 * A sequence's KV state once it is idle. A turn's session ends when its last token reached the
 * client, which can be a moment before the engine's own end of that generation (its last events,
 * a queued cancel or grant); the engine saves once those are done, between two decode steps (a
 * step of a long prompt batch can take seconds; the event loop never blocks on it). Gives up with
 * undefined after `waitMs`. The state is returned only when it holds exactly `expected` (what the
 * kept sequence held when it was evicted): a slot taken by other work in between is never saved
 * under the old conversation's name.
 */
export async function saveWhenIdle(seq: EngineSequence, expected: readonly number[], waitMs = BUSY_WAIT_MS): Promise<SequenceState | undefined> {
  if (seq.saveState === undefined || expected.length === 0) return undefined;
  const state = await within(seq.saveState(), waitMs, undefined);
  return state !== undefined && sameTokens(state.tokens, expected) ? state : undefined;
}

/** Longest a save or restore waits for the sequence to be idle and the decode loop's gap between steps (ms). */
export const BUSY_WAIT_MS = 30_000;

/**
 * Restores `state` into the sequence once it is idle (between steps only, like saveWhenIdle);
 * false when no longer wanted, refused (the state does not fit) or not done within `waitMs`.
 */
export async function restoreWhenIdle(seq: EngineSequence, state: SequenceState, stillWanted: () => boolean, waitMs = BUSY_WAIT_MS): Promise<boolean> {
  if (seq.restoreState === undefined || !stillWanted()) return false;
  return within(seq.restoreState(state), waitMs, false);
}

/** `p`, or `fallback` once `ms` passed first (`p` still settles; its result is then dropped). */
function within<T, F>(p: Promise<T>, ms: number, fallback: F): Promise<T | F> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<F>((resolve) => {
    timer = setTimeout(() => resolve(fallback), ms);
    timer.unref();
  });
  return Promise.race([p, late]).finally(() => clearTimeout(timer));
}

function sameTokens(a: readonly number[], b: readonly number[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
