import type { Candidate } from "./scheduler/types.js";
import type { SessionTracker } from "./session-tracker.js";
import type { WorkerTable } from "./worker-table.js";

/**
 * The scheduler's view of the fleet: each worker as its last heartbeat describes it, with the load
 * this coordinator dispatched counted at once (the larger of the worker's report and the local
 * count: load counts from dispatch, not from the next heartbeat).
 */
export function candidatesOf(table: WorkerTable, tracker: SessionTracker, now: number): Candidate[] {
  return table.list().map((e) => {
    const local = tracker.load(e.id);
    const h = e.health;
    return {
      id: e.id,
      url: e.url,
      model: h.model.id,
      fresh: table.isFresh(e, now),
      healthy: e.breaker.allows(now) && h.alive,
      draining: h.draining,
      sessions: Math.max(h.active_sessions, local.sessions),
      maxSessions: h.limits.max_sessions,
      kvBytes: Math.max(h.kv_reserved_bytes, local.kvBytes),
      maxKvBytes: h.limits.max_kv_bytes,
      maxSessionKvBytes: h.limits.max_session_kv_bytes,
      kvBytesPerToken: h.model.kv_bytes_per_token,
      contextSize: h.model.context_size,
      waiting: h.waiting,
      slotsTotal: h.slots.total,
    };
  });
}
