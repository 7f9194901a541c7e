import { ServingError } from "../common/serving-error.js";
import { requireString, type JsonObject } from "./validate.js";
import { parseHttpUrl } from "../common/config-parse.js";

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
  threads: number;
}

export interface Heartbeat {
  worker_id: string;
  worker_url: string;
  /** Worker's wall clock (ms since epoch); informative only, freshness uses the receiver's clock. */
  timestamp: number;
  /** The sender's heartbeat period (ms), so the coordinator can expire it after 3 missed beats. */
  interval_ms: number | undefined;
  health: WorkerHealth;
}

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
  const modelId = typeof model.id === "string" && model.id !== "" ? model.id.slice(0, 256) : "default";
  const aliases = Array.isArray(model.aliases) ? model.aliases.filter((a): a is string => typeof a === "string").slice(0, 32) : [];
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
    threads: num(h, "threads", 0),
  };
  const interval = o.interval_ms;
  return {
    worker_id,
    worker_url,
    timestamp: typeof o.timestamp === "number" ? o.timestamp : 0,
    interval_ms: typeof interval === "number" && Number.isFinite(interval) && interval > 0 ? interval : undefined,
    health,
  };
}
