import type { CacheNotice, HeartbeatCache } from "../../protocol/heartbeat.js";
import { BLOCK_CHARS, blockCount, blockKeys } from "../../protocol/prefix-blocks.js";

/**
 * Which workers hold which prompt prefixes in their KV caches, exactly as they publish it: block key
 * → workers (prefix-blocks.ts), built from the add/evict events and snapshots of their heartbeats
 * (worker/cache-event-log.ts). Soft state: a restarted coordinator asks each worker for a snapshot
 * (by acknowledging nothing) and is whole again after one heartbeat round trip.
 *
 * Bounded: at most `maxBlocks` block references in all (one per key per cache entry; at most about
 * 300 bytes each with the maps, measured with every key distinct). Past it, the entries indexed longest ago are dropped first, which only
 * makes the index know less than the workers hold. A worker that leaves the table is dropped whole.
 *
 * Matching is O(matched blocks × workers holding them): keys are chained, so a worker holding key i
 * holds the whole prefix through block i, and the walk stops at the first key nobody holds.
 *
 * KV tiers: an entry a worker holds in its host-memory or disk tier (restored into a slot on use)
 * is indexed apart, per tier, and matched apart (`tiers`): the prefix scorer weighs such a hit by
 * the worker's measured restore cost, below a slot hit.
 */
export type TierName = "host" | "disk";
export interface PrefixMatch {
  /** Complete blocks in the request's canonical text. */
  readonly blocks: number;
  /** Worker id → leading blocks of the request it holds (absent: none). */
  readonly matched: ReadonlyMap<string, number>;
  /** Worker id → leading blocks it holds in a KV tier, and which tier (the longer match; host on a tie). */
  readonly tiers?: ReadonlyMap<string, { blocks: number; tier: TierName }>;
}

export interface PrefixIndexSnapshot {
  workers: number;
  entries: number;
  block_refs: number;
  keys: number;
  max_block_refs: number;
}

interface WorkerCache {
  epoch: string;
  seq: number;
  entries: Map<number, readonly string[]>;
  /** Entries held in a KV tier: id → tier. */
  tiers: Map<number, TierName>;
}

export const NO_MATCH: PrefixMatch = { blocks: 0, matched: new Map() };

export class PrefixIndex {
  private readonly holders = new Map<string, Map<string, number>>();
  private readonly tierHolders: Record<TierName, Map<string, Map<string, number>>> = { host: new Map(), disk: new Map() };
  private readonly workers = new Map<string, WorkerCache>();
  /** Every indexed entry, oldest first (for the memory bound). */
  private readonly order = new Map<string, { workerId: string; id: number }>();
  private blockRefs = 0;

  constructor(readonly maxBlocks: number) {}

  /**
   * Applies a worker's heartbeat cache section; returns the state now held for it (the ack sent
   * back), or null when the section does not follow from what is held (a gap, another epoch, no
   * state): the worker then sends a snapshot.
   */
  apply(workerId: string, c: HeartbeatCache): { epoch: string; seq: number } | null {
    // Another block size is another key space: ignored, but acknowledged so it is not resent.
    if (c.block_chars !== BLOCK_CHARS) return { epoch: c.epoch, seq: c.seq };
    let w = this.workers.get(workerId);
    if (c.snapshot !== undefined) {
      if (w !== undefined) this.removeWorker(workerId);
      w = { epoch: c.epoch, seq: c.seq, entries: new Map(), tiers: new Map() };
      this.workers.set(workerId, w);
      for (const e of c.snapshot) this.add(workerId, w, e.id, e.blocks, e.tier);
      return { epoch: w.epoch, seq: w.seq };
    }
    if (w === undefined || w.epoch !== c.epoch) {
      if (w !== undefined) this.removeWorker(workerId);
      return null;
    }
    if (c.events !== undefined && c.since !== undefined && c.since <= w.seq) {
      for (const e of c.events) {
        if (e.seq <= w.seq) continue; // applied already (our last ack was lost)
        if (e.op === "add") this.add(workerId, w, e.id, e.blocks ?? [], e.tier);
        else this.remove(workerId, w, e.id);
        w.seq = e.seq;
      }
    }
    // Older than what a stream's cache notice already brought: nothing to do. Newer: a gap.
    if (c.seq > w.seq) {
      this.removeWorker(workerId);
      return null;
    }
    return { epoch: w.epoch, seq: w.seq };
  }

  /**
   * A worker's add event that came with the end of a decode stream, ahead of the heartbeat that
   * carries it. Applied in order when it is the next event; applied alone when earlier ones are
   * still on their way (an add names a new entry, which no earlier event touches; the heartbeat's
   * copy then re-adds it, no-op); ignored when the index has moved past it or holds another epoch.
   */
  applyNotice(workerId: string, n: CacheNotice): void {
    const w = this.workers.get(workerId);
    if (w === undefined || w.epoch !== n.epoch || n.event.seq <= w.seq) return;
    this.add(workerId, w, n.event.id, n.event.blocks ?? []);
    if (n.event.seq === w.seq + 1) w.seq = n.event.seq;
  }

  removeWorker(workerId: string): void {
    const w = this.workers.get(workerId);
    if (w === undefined) return;
    for (const id of [...w.entries.keys()]) this.remove(workerId, w, id);
    this.workers.delete(workerId);
  }

  /** How much of `canonical` (prefix-blocks.ts) each worker holds. */
  match(canonical: string): PrefixMatch {
    const blocks = blockCount(canonical);
    if (blocks === 0 || this.holders.size + this.tierHolders.host.size + this.tierHolders.disk.size === 0) return { blocks, matched: NO_MATCH.matched };
    if (this.tierHolders.host.size === 0 && this.tierHolders.disk.size === 0) return { blocks, matched: leading(this.holders, blockKeys(canonical)) };
    // Walked three times: the keys are computed once.
    const keys = [...blockKeys(canonical)];
    const matched = leading(this.holders, keys);
    const tiers = new Map<string, { blocks: number; tier: TierName }>();
    for (const tier of ["disk", "host"] as const) {
      for (const [w, n] of leading(this.tierHolders[tier], keys)) {
        if (n >= (tiers.get(w)?.blocks ?? 0)) tiers.set(w, { blocks: n, tier });
      }
    }
    return { blocks, matched, tiers };
  }

  /** A worker's indexed entries: id → block keys (for operators and tests). */
  entriesOf(workerId: string): ReadonlyMap<number, readonly string[]> {
    return this.workers.get(workerId)?.entries ?? new Map();
  }

  /** Sizes, for health and the dashboard. */
  snapshot(): PrefixIndexSnapshot {
    return { workers: this.workers.size, entries: this.order.size, block_refs: this.blockRefs, keys: this.holders.size, max_block_refs: this.maxBlocks };
  }

  private add(workerId: string, w: WorkerCache, id: number, blocks: readonly string[], tier?: TierName): void {
    if (w.entries.has(id)) this.remove(workerId, w, id);
    const kept = blocks.length > this.maxBlocks ? blocks.slice(0, this.maxBlocks) : blocks;
    if (kept.length === 0) return;
    while (this.blockRefs + kept.length > this.maxBlocks) this.dropOldest();
    w.entries.set(id, kept);
    if (tier !== undefined) w.tiers.set(id, tier);
    const holders = tier === undefined ? this.holders : this.tierHolders[tier];
    this.order.set(orderKey(workerId, id), { workerId, id });
    this.blockRefs += kept.length;
    for (const key of kept) {
      let h = holders.get(key);
      if (h === undefined) holders.set(key, (h = new Map()));
      h.set(workerId, (h.get(workerId) ?? 0) + 1);
    }
  }

  private remove(workerId: string, w: WorkerCache, id: number): void {
    const blocks = w.entries.get(id);
    if (blocks === undefined) return;
    w.entries.delete(id);
    const tier = w.tiers.get(id);
    w.tiers.delete(id);
    const holders = tier === undefined ? this.holders : this.tierHolders[tier];
    this.order.delete(orderKey(workerId, id));
    this.blockRefs -= blocks.length;
    for (const key of blocks) {
      const h = holders.get(key)!;
      const n = h.get(workerId)! - 1;
      if (n > 0) h.set(workerId, n);
      else {
        h.delete(workerId);
        if (h.size === 0) holders.delete(key);
      }
    }
  }

  private dropOldest(): void {
    const first = this.order.values().next().value;
    if (first === undefined) return;
    this.remove(first.workerId, this.workers.get(first.workerId)!, first.id);
  }
}

/** Worker → leading blocks of `keys` it holds in `holders` (keys are chained: the walk stops at the first key nobody holds). */
function leading(holders: Map<string, Map<string, number>>, keys: Iterable<string>): Map<string, number> {
  const matched = new Map<string, number>();
  if (holders.size === 0) return matched;
  let i = 0;
  for (const key of keys) {
    const h = holders.get(key);
    if (h === undefined) break;
    i++;
    for (const w of h.keys()) matched.set(w, i);
  }
  return matched;
}

function orderKey(workerId: string, id: number): string {
  return `${workerId}\n${id}`;
}
