import { randomUUID } from "node:crypto";
import type { CacheEvent, CacheNotice, HeartbeatCache } from "../protocol/heartbeat.js";
import { BLOCK_CHARS } from "../protocol/prefix-blocks.js";
import type { KeptSequence, KeptSequenceEvents } from "./kept-sequences.js";
import type { KvTierEvents, KvTierName } from "./kv-tiers.js";

/** Ids of KV tier entries start here: kept sequences (1, 2, 3, …) never reach it. */
const TIER_ID_BASE = 2 ** 40;

/**
 * What this worker's prefix cache gained and lost, as numbered events for coordinators (carried by
 * heartbeats). Each coordinator acknowledges the last event it applied; the next heartbeat to it
 * carries the events after that, or a full snapshot when it has none (a new coordinator, a restart
 * of either side: the `epoch` names this process) or when the log no longer reaches back that far.
 *
 * Bounds: the log keeps the last MAX_LOG_EVENTS events; one heartbeat carries at most
 * MAX_BLOCKS_PER_BEAT block keys (about 20 bytes each; heartbeats stay well under a coordinator's
 * 1 MiB body limit). A snapshot over that bound lists the most recently used entries first and
 * leaves the rest out, which only makes the coordinator's view smaller than the truth.
 */
export const MAX_LOG_EVENTS = 4096;
export const MAX_BLOCKS_PER_BEAT = 32_768;

export interface CacheAck {
  epoch: string;
  seq: number;
}

export class CacheEventLog implements KeptSequenceEvents, KvTierEvents {
  readonly epoch = randomUUID();
  private seq = 0;
  private readonly events: CacheEvent[] = [];
  private readonly live = new Map<number, readonly string[]>();
  /** Live entries held in a KV tier rather than a slot: id → tier; conversation → id. */
  private readonly tierOf = new Map<number, KvTierName>();
  private readonly tierIds = new Map<string, number>();
  private nextTierId = TIER_ID_BASE;

  /** Called after every event (to send a heartbeat soon). */
  onEvent: (() => void) | undefined;

  get lastSeq(): number {
    return this.seq;
  }

  /** Entries currently published: id → block keys. */
  entries(): ReadonlyMap<number, readonly string[]> {
    return this.live;
  }

  private addKept(k: KeptSequence): void {
    if (k.blocks.length === 0) return; // nothing a coordinator could match
    this.live.set(k.id, k.blocks);
    this.append({ seq: 0, op: "add", id: k.id, blocks: k.blocks });
  }

  removed(k: KeptSequence | string, _tier?: KvTierName): void {
    if (typeof k === "string") return this.removeTierEntry(k);
    if (!this.live.delete(k.id)) return;
    this.append({ seq: 0, op: "evict", id: k.id });
  }

  /** A conversation's KV entered a tier (kv-tiers.ts): published like a kept sequence, with its tier. */
  added(key: string, tier: KvTierName, _tokens: number, blocks: readonly string[]): void;
  added(k: KeptSequence): void;
  added(a: KeptSequence | string, tier?: KvTierName, _tokens?: number, blocks?: readonly string[]): void {
    if (typeof a !== "string") return this.addKept(a);
    if (blocks === undefined || blocks.length === 0 || tier === undefined) return;
    this.removeTierEntry(a);
    const id = this.nextTierId++;
    this.tierIds.set(a, id);
    this.tierOf.set(id, tier);
    this.live.set(id, blocks);
    this.append({ seq: 0, op: "add", id, blocks, tier });
  }

  private removeTierEntry(key: string): void {
    const id = this.tierIds.get(key);
    if (id === undefined) return;
    this.tierIds.delete(key);
    this.tierOf.delete(id);
    if (this.live.delete(id)) this.append({ seq: 0, op: "evict", id });
  }

  private append(e: CacheEvent): void {
    e.seq = ++this.seq;
    this.events.push(e);
    if (this.events.length > MAX_LOG_EVENTS) this.events.splice(0, this.events.length - MAX_LOG_EVENTS);
    this.onEvent?.();
  }

  /** The add event of a live entry, if still in the log (sent with the end of its decode stream). */
  noticeOf(id: number): CacheNotice | undefined {
    if (!this.live.has(id)) return undefined;
    for (let i = this.events.length - 1; i >= 0; i--) {
      const e = this.events[i]!;
      if (e.id === id && e.op === "add") return { epoch: this.epoch, event: e };
    }
    return undefined;
  }

  /** The heartbeat section for a coordinator that acknowledged `ack` (undefined: nothing yet). */
  sectionFor(ack: CacheAck | undefined): HeartbeatCache {
    const base = { epoch: this.epoch, seq: this.seq, block_chars: BLOCK_CHARS };
    if (ack !== undefined && ack.epoch === this.epoch && ack.seq <= this.seq) {
      if (ack.seq === this.seq) return base;
      const first = this.events[0];
      // The events after ack.seq are all still in the log when the first one kept is ack.seq + 1 or older.
      if (first !== undefined && first.seq <= ack.seq + 1) {
        const events = this.events.slice(ack.seq + 1 - first.seq);
        let blocks = 0;
        for (const e of events) blocks += e.blocks?.length ?? 0;
        if (blocks <= MAX_BLOCKS_PER_BEAT) return { ...base, since: ack.seq, events };
      }
    }
    return { ...base, snapshot: this.snapshot() };
  }

  /** Most recently kept first, within MAX_BLOCKS_PER_BEAT. */
  private snapshot(): { id: number; blocks: readonly string[]; tier?: KvTierName }[] {
    const out: { id: number; blocks: readonly string[]; tier?: KvTierName }[] = [];
    let blocks = 0;
    for (const [id, b] of [...this.live].reverse()) {
      if (blocks + b.length > MAX_BLOCKS_PER_BEAT) continue;
      blocks += b.length;
      const tier = this.tierOf.get(id);
      out.push(tier === undefined ? { id, blocks: b } : { id, blocks: b, tier });
    }
    return out;
  }
}
