import type { Candidate } from "../scheduler/types.js";
import type { SessionTracker } from "./session-tracker.js";
import type { WorkerTable } from "./worker-table.js";

/**
 * The scheduler's view of the fleet: each worker as its last heartbeat describes it, with its load
 * from `WorkerTable.load`: this coordinator's own sessions counted from dispatch to release, at once,
 * plus those the heartbeat counted beyond them (other coordinators').
 */
export function candidatesOf(table: WorkerTable, tracker: SessionTracker, now: number): Candidate[] {
  // One object per worker and nothing else (this runs for every scheduling decision).
  const out: Candidate[] = [];
  for (const e of table.values()) {
    const load = table.load(e, tracker.load(e.id));
    const h = e.health;
    out.push({
      id: e.id,
      url: e.url,
      model: h.model.id,
      fresh: table.isFresh(e, now),
      healthy: e.breaker.allows(now) && h.alive,
      draining: h.draining,
      sessions: load.sessions,
      maxSessions: h.limits.max_sessions,
      kvBytes: load.kvBytes,
      maxKvBytes: h.limits.max_kv_bytes,
      maxSessionKvBytes: h.limits.max_session_kv_bytes,
      kvBytesPerToken: h.model.kv_bytes_per_token,
      contextSize: h.model.context_size,
      waiting: h.waiting,
      slotsTotal: h.slots.total,
      kvTierWeight: h.kv_tiers === undefined ? undefined : { host: h.kv_tiers.weight_host, disk: h.kv_tiers.weight_disk },
    });
  }
  return out;
}
