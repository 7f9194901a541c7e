/**
 * A worker's prefix-cache changes as they travel: in its heartbeat (heartbeat.ts, as a sequence)
 * and at the end of a decode stream (worker-api.ts, one event outside that sequence). Its own
 * file so that the worker API need not import the heartbeat's parser.
 */

/** One change of a worker's prefix cache: an entry kept (with its block keys) or dropped. */
export interface CacheEvent {
  /** 1, 2, 3, … within one worker process (its epoch). */
  seq: number;
  op: "add" | "evict";
  id: number;
  blocks?: readonly string[];
  /** Added: the entry is held in a KV tier (restored into a slot on use), not in a slot. */
  tier?: "host" | "disk";
}

/** One cache event sent with the end of a decode stream (outside the heartbeat's sequence). */
export interface CacheNotice {
  epoch: string;
  event: CacheEvent;
}
