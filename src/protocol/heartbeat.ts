import { ServingError } from "./serving-error.js";
import { requireString, type JsonObject } from "./validate.js";
import { parseHttpUrl } from "./http-url.js";
import type { CacheEvent, CacheNotice } from "./cache-notice.js";
// Kept importable from here for callers that read heartbeats and notices together.
export type { CacheEvent, CacheNotice } from "./cache-notice.js";
import { BLOCK_KEY_RE, MAX_BLOCKS_PER_SEQUENCE } from "./prefix-blocks.js";

/**
 * What a worker tells coordinators about itself, in `/worker/health` and in each heartbeat. The
 * seed's fields (`alive`, `active_sessions`, `kv_cache_bytes`) come first; the rest is added.
 */
export interface WorkerHealth {
  alive: boolean;
  active_sessions: number;
  kv_cache_bytes: number;
  worker_id: string;
  draining: boolean;
  engine: string;
  /** `created`: the model file's modification time (unix seconds), for OpenAI's model list. */
  model: { id: string; aliases: string[]; context_size: number; kv_bytes_per_token: number; path?: string; created?: number };
  limits: { max_sessions: number; max_session_kv_bytes: number; max_kv_bytes: number };
  /** Engine sequences: `total` decode together; `busy` hold a session's KV. */
  slots: { total: number; busy: number };
  /** Sessions admitted but waiting for a free slot. */
  waiting: number;
  /** Sessions decoding now. */
  running: number;
  /** KV bytes promised to admitted sessions (prompt + max_tokens each). */
  kv_reserved_bytes: number;
  /** Conversations whose KV is kept between turns (idle; evicted when the room is needed). */
  kept_sessions: number;
  kept_kv_bytes: number;
  /** Every sequence kept as prefix cache after its session ended (conversations' included). */
  cached_sequences: number;
  cached_kv_bytes: number;
  threads: number;
  /**
   * KV tiers (host memory, disk) when on: their own byte use and limits (never part of the slot
   * KV above), and what a tier hit is worth against a slot hit (1 − restore/prefill cost per token,
   * measured by the worker), which the prefix scorer applies.
   */
  kv_tiers?: KvTierHealth;
}

export interface KvTierHealth {
  host_bytes: number;
  host_limit_bytes: number;
  host_entries: number;
  disk_bytes: number;
  disk_limit_bytes: number;
  disk_entries: number;
  weight_host: number;
  weight_disk: number;
  prefill_ms_per_token: number;
  restore_ms_per_token: { host: number; disk: number };
  saved: number;
  restored_host: number;
  restored_disk: number;
  discarded: number;
  dropped: number;
}

function parseKvTiers(v: unknown): KvTierHealth | undefined {
  if (typeof v !== "object" || v === null || Array.isArray(v)) return undefined;
  const o = v as JsonObject;
  const n = (k: string) => (typeof o[k] === "number" && Number.isFinite(o[k]) && (o[k] as number) >= 0 ? (o[k] as number) : 0);
  const w = (k: string) => Math.min(1, n(k));
  const r = typeof o.restore_ms_per_token === "object" && o.restore_ms_per_token !== null ? (o.restore_ms_per_token as JsonObject) : {};
  const rn = (k: string) => (typeof r[k] === "number" && Number.isFinite(r[k]) ? (r[k] as number) : 0);
  return {
    host_bytes: n("host_bytes"), host_limit_bytes: n("host_limit_bytes"), host_entries: n("host_entries"),
    disk_bytes: n("disk_bytes"), disk_limit_bytes: n("disk_limit_bytes"), disk_entries: n("disk_entries"),
    weight_host: w("weight_host"), weight_disk: w("weight_disk"), prefill_ms_per_token: n("prefill_ms_per_token"),
    restore_ms_per_token: { host: rn("host"), disk: rn("disk") },
    saved: n("saved"), restored_host: n("restored_host"), restored_disk: n("restored_disk"), discarded: n("discarded"), dropped: n("dropped"),
  };
}

/**
 * A worker's prefix cache in a heartbeat (see worker/cache-event-log.ts): `seq` is its last event;
 * `events` are those after `since` (what the coordinator acknowledged); `snapshot` replaces the
 * coordinator's whole view; with neither, nothing changed since `seq`.
 */
export interface HeartbeatCache {
  epoch: string;
  seq: number;
  block_chars: number;
  since?: number;
  events?: CacheEvent[];
  snapshot?: { id: number; blocks: readonly string[]; tier?: "host" | "disk" }[];
}

export interface Heartbeat {
  worker_id: string;
  worker_url: string;
  /** Worker's wall clock (ms since epoch); informative only, freshness uses the receiver's clock. */
  timestamp: number;
  /** The sender's heartbeat period (ms), so the coordinator can expire it after 3 missed beats. */
  interval_ms: number | undefined;
  health: WorkerHealth;
  /** Added: the worker's prefix cache, when it publishes one. */
  cache?: HeartbeatCache;
}

/** What a coordinator answers a heartbeat: the cache state it holds of that worker (null: none, send a snapshot). */
export interface HeartbeatAck {
  status: "ok";
  cache?: { epoch: string; seq: number } | null;
}

/** A worker's model names: how many aliases, how long each name (characters); MODEL_ALIASES allows the same. */
export const MAX_MODEL_ALIASES = 32;
export const MAX_MODEL_NAME_CHARS = 256;
/** Bounds of a heartbeat's announced interval (ms); the upper one is the coordinator's MAX_HEARTBEAT_INTERVAL_MS. */
export const MIN_HEARTBEAT_INTERVAL_MS = 50;

/** Bounds on a heartbeat's cache section (the body limit bounds it too). */
const MAX_CACHE_EVENTS = 8192;
const MAX_CACHE_BLOCKS = 65_536;

function num(o: JsonObject, key: string, fallback?: number): number {
  const v = o[key];
  if (v === undefined && fallback !== undefined) return fallback;
  if (typeof v !== "number" || !Number.isFinite(v) || v < 0) {
    throw new ServingError("invalid_field", `heartbeat field '${key}' must be a non-negative number`, { param: key });
  }
  return v;
}

function obj(o: JsonObject, key: string): JsonObject {
  const v = o[key];
  return typeof v === "object" && v !== null && !Array.isArray(v) ? (v as JsonObject) : {};
}

/**
 * Validates a heartbeat. Seed workers send only the seed's fields; the added ones then take
 * defaults that let the coordinator still route to them (the seed's limits).
 */
export function parseHeartbeat(o: JsonObject): Heartbeat {
  const worker_id = requireString(o, "worker_id", { nonEmpty: true, maxLength: 128 });
  if (!/^[A-Za-z0-9._:@-]+$/.test(worker_id)) {
    throw new ServingError("invalid_field", "'worker_id' may hold letters, digits and . _ : @ - only", { param: "worker_id" });
  }
  const rawUrl = requireString(o, "worker_url", { nonEmpty: true, maxLength: 2048 });
  let worker_url: string;
  try {
    worker_url = parseHttpUrl(rawUrl);
  } catch {
    throw new ServingError("invalid_field", "'worker_url' must be an http(s) URL", { param: "worker_url" });
  }
  const h = obj(o, "health");
  if (typeof o.health !== "object" || o.health === null) throw new ServingError("missing_field", "missing required field 'health'", { param: "health" });
  const model = obj(h, "model");
  const limits = obj(h, "limits");
  const slots = obj(h, "slots");
  const modelId = typeof model.id === "string" && model.id !== "" ? model.id : "default";
  if (modelId.length > MAX_MODEL_NAME_CHARS) throw new ServingError("invalid_field", `'health.model.id' is longer than ${MAX_MODEL_NAME_CHARS} characters`, { param: "health.model.id" });
  const aliases = Array.isArray(model.aliases) ? model.aliases.filter((a): a is string => typeof a === "string") : [];
  // Refused rather than cut: a worker whose names were silently dropped would be unreachable by them.
  if (aliases.length > MAX_MODEL_ALIASES) throw new ServingError("invalid_field", `'health.model.aliases' holds more than ${MAX_MODEL_ALIASES} names`, { param: "health.model.aliases" });
  if (aliases.some((a) => a.length === 0 || a.length > MAX_MODEL_NAME_CHARS)) {
    throw new ServingError("invalid_field", `every name in 'health.model.aliases' must have 1 to ${MAX_MODEL_NAME_CHARS} characters`, { param: "health.model.aliases" });
  }
  const health: WorkerHealth = {
    alive: h.alive !== false,
    active_sessions: num(h, "active_sessions"),
    kv_cache_bytes: num(h, "kv_cache_bytes"),
    worker_id,
    draining: h.draining === true,
    engine: typeof h.engine === "string" ? h.engine.slice(0, 64) : "unknown",
    model: {
      id: modelId,
      aliases,
      context_size: num(model, "context_size", 0),
      kv_bytes_per_token: num(model, "kv_bytes_per_token", 0),
      ...(typeof model.created === "number" && Number.isFinite(model.created) && model.created > 0 ? { created: Math.floor(model.created) } : {}),
    },
    limits: {
      max_sessions: num(limits, "max_sessions", 100),
      max_session_kv_bytes: num(limits, "max_session_kv_bytes", 512 * 1024 ** 2),
      max_kv_bytes: num(limits, "max_kv_bytes", 8 * 1024 ** 3),
    },
    slots: { total: num(slots, "total", 0), busy: num(slots, "busy", 0) },
    waiting: num(h, "waiting", 0),
    running: num(h, "running", 0),
    kv_reserved_bytes: num(h, "kv_reserved_bytes", 0),
    kept_sessions: num(h, "kept_sessions", 0),
    kept_kv_bytes: num(h, "kept_kv_bytes", 0),
    cached_sequences: num(h, "cached_sequences", 0),
    cached_kv_bytes: num(h, "cached_kv_bytes", 0),
    threads: num(h, "threads", 0),
  };
  const tiers = parseKvTiers(h.kv_tiers);
  if (tiers !== undefined) health.kv_tiers = tiers;
  const interval = o.interval_ms;
  return {
    worker_id,
    worker_url,
    timestamp: typeof o.timestamp === "number" ? o.timestamp : 0,
    interval_ms: typeof interval === "number" && Number.isFinite(interval) && interval > 0 ? interval : undefined,
    health,
    ...(o.cache !== undefined && o.cache !== null ? { cache: parseCache(o.cache) } : {}),
  };
}

function badCache(what: string): ServingError {
  return new ServingError("invalid_field", `heartbeat field 'cache': ${what}`, { param: "cache" });
}

function entryId(v: unknown): number {
  if (typeof v !== "number" || !Number.isSafeInteger(v) || v < 0) throw badCache("an entry id must be a non-negative integer");
  return v;
}

function blockList(v: unknown, budget: { left: number }): string[] {
  if (!Array.isArray(v) || v.length > MAX_BLOCKS_PER_SEQUENCE) throw badCache(`blocks must be a list of at most ${MAX_BLOCKS_PER_SEQUENCE} keys`);
  budget.left -= v.length;
  if (budget.left < 0) throw badCache(`more than ${MAX_CACHE_BLOCKS} block keys`);
  for (const k of v) if (typeof k !== "string" || !BLOCK_KEY_RE.test(k)) throw badCache("a block key must be 16 hex digits");
  return v as string[];
}

/** Validates a heartbeat's cache section: bounded in events and keys, every key well-formed. */
function tierOf(v: unknown): { tier?: "host" | "disk" } {
  return v === "host" || v === "disk" ? { tier: v } : {};
}

export function parseCache(v: unknown): HeartbeatCache {
  if (typeof v !== "object" || v === null || Array.isArray(v)) throw badCache("must be an object");
  const c = v as JsonObject;
  if (typeof c.epoch !== "string" || c.epoch === "" || c.epoch.length > 64) throw badCache("'epoch' must be a string of 1 to 64 characters");
  const seq = entryId(c.seq);
  if (typeof c.block_chars !== "number" || !Number.isSafeInteger(c.block_chars) || c.block_chars < 1) throw badCache("'block_chars' must be a positive integer");
  const out: HeartbeatCache = { epoch: c.epoch, seq, block_chars: c.block_chars };
  const budget = { left: MAX_CACHE_BLOCKS };
  if (c.snapshot !== undefined) {
    if (!Array.isArray(c.snapshot) || c.snapshot.length > MAX_CACHE_EVENTS) throw badCache("'snapshot' must be a list of entries");
    out.snapshot = c.snapshot.map((e) => {
      if (typeof e !== "object" || e === null) throw badCache("a snapshot entry must be an object");
      const x = e as JsonObject;
      return { id: entryId(x.id), blocks: blockList(x.blocks, budget), ...tierOf(x.tier) };
    });
  } else if (c.events !== undefined) {
    const since = entryId(c.since);
    if (!Array.isArray(c.events) || c.events.length > MAX_CACHE_EVENTS) throw badCache("'events' must be a list");
    if (since + c.events.length !== seq) throw badCache("'events' must run from 'since' + 1 to 'seq'");
    out.since = since;
    out.events = c.events.map((e, i) => {
      if (typeof e !== "object" || e === null) throw badCache("an event must be an object");
      const x = e as JsonObject;
      if (x.seq !== since + i + 1) throw badCache("events must be numbered consecutively");
      if (x.op === "add") return { seq: since + i + 1, op: "add", id: entryId(x.id), blocks: blockList(x.blocks, budget), ...tierOf(x.tier) };
      if (x.op === "evict") return { seq: since + i + 1, op: "evict", id: entryId(x.id) };
      throw badCache("an event's 'op' must be add or evict");
    });
  }
  return out;
}

/** A decode stream's cache notice, or undefined when absent or malformed (it is only a hint). */
export function parseCacheNotice(v: unknown): CacheNotice | undefined {
  if (typeof v !== "object" || v === null) return undefined;
  const n = v as JsonObject;
  const e = n.event as JsonObject | undefined;
  if (typeof n.epoch !== "string" || n.epoch === "" || n.epoch.length > 64 || typeof e !== "object" || e === null) return undefined;
  try {
    if (e.op !== "add" || typeof e.seq !== "number" || !Number.isSafeInteger(e.seq) || e.seq < 1) return undefined;
    return { epoch: n.epoch, event: { seq: e.seq, op: "add", id: entryId(e.id), blocks: blockList(e.blocks, { left: MAX_BLOCKS_PER_SEQUENCE }) } };
  } catch {
    return undefined;
  }
}
