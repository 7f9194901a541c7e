import type { Candidate } from "./types.js";

/**
 * A worker's load as one number: the largest of in-flight sessions per decode slot (1 = every slot
 * busy, so a new session would wait inside the worker), session utilisation and KV utilisation.
 * A worker reporting no limit counts as fully loaded on that axis. Used by the saturation guard.
 */
export function loadOf(c: Candidate): number {
  const perSlot = c.slotsTotal > 0 ? c.sessions / c.slotsTotal : 0;
  const sessions = c.maxSessions > 0 ? c.sessions / c.maxSessions : 1;
  const kv = c.maxKvBytes > 0 ? c.kvBytes / c.maxKvBytes : 1;
  return Math.max(perSlot, sessions, kv);
}

/** Sessions beyond the worker's decode slots, or those it reports waiting, whichever is more. */
export function queuedOf(c: Candidate): number {
  return Math.max(c.waiting, c.slotsTotal > 0 ? c.sessions - c.slotsTotal : 0, 0);
}
