import { randomUUID } from "node:crypto";
import type { CacheEvent, CacheNotice, HeartbeatCache } from "../protocol/heartbeat.js";
import { BLOCK_CHARS } from "../protocol/prefix-blocks.js";
import type { KeptSequence, KeptSequenceEvents } from "./kept-sequences.js";

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

export class CacheEventLog implements KeptSequenceEvents {
  readonly epoch = randomUUID();
  private seq = 0;
  private readonly events: CacheEvent[] = [];
  private readonly live = new Map<number, readonly string[]>();

  /** Called after every event (to send a heartbeat soon). */
  onEvent: (() => void) | undefined;

  get lastSeq(): number {
    return this.seq;
  }

  /** Entries currently published: id → block keys. */
  entries(): ReadonlyMap<number, readonly string[]> {
    return this.live;
  }

  added(k: KeptSequence): void {
    if (k.blocks.length === 0) return; // nothing a coordinator could match
    this.live.set(k.id, k.blocks);
    this.append({ seq: 0, op: "add", id: k.id, blocks: k.blocks });
  }

  removed(k: KeptSequence): void {
    if (!this.live.delete(k.id)) return;
    this.append({ seq: 0, op: "evict", id: k.id });
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
  private snapshot(): { id: number; blocks: readonly string[] }[] {
    const out: { id: number; blocks: readonly string[] }[] = [];
    let blocks = 0;
    for (const [id, b] of [...this.live].reverse()) {
      if (blocks + b.length > MAX_BLOCKS_PER_BEAT) continue;
      blocks += b.length;
      out.push({ id, blocks: b });
    }
    return out;
  }
}
