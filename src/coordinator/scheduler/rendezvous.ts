/**
 * Rendezvous (highest random weight) hashing: a conversation's home is the candidate with the
 * largest hash of (conversation, worker). Every coordinator computes the same home from the same
 * candidates with no shared state, and when a worker leaves only its own conversations move.
 */

/** A 32-bit weight of (key, worker id): FNV-1a over both, then a finaliser. */
export function rendezvousWeight(key: string, workerId: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) h = Math.imul(h ^ key.charCodeAt(i), 0x01000193);
  h = Math.imul(h ^ 0xff, 0x01000193);
  for (let i = 0; i < workerId.length; i++) h = Math.imul(h ^ workerId.charCodeAt(i), 0x01000193);
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** The home of `key` among `ids`: the largest weight, equal weights to the id that sorts first. */
export function rendezvousHome(key: string, ids: Iterable<string>): string | undefined {
  let best: string | undefined;
  let bestWeight = -1;
  for (const id of ids) {
    const w = rendezvousWeight(key, id);
    if (w > bestWeight || (w === bestWeight && best !== undefined && id < best)) {
      best = id;
      bestWeight = w;
    }
  }
  return best;
}
