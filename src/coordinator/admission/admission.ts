import type { CapacityAggregate } from "../fleet/worker-table.js";

/**
 * The O(1) admission check, before any worker is touched: the fleet's live sessions and reserved
 * KV against the system limits and against what the routable workers can hold together.
 * It returns a value (STYLE rule 5); the caller turns a rejection into a 503.
 */
export type AdmissionReason = "no_workers" | "system_sessions_full" | "system_kv_cache_full";

export type AdmissionDecision = { admitted: true; kvEstimateBytes: number } | { admitted: false; reason: AdmissionReason; message: string };

export interface AdmissionInput {
  capacity: CapacityAggregate;
  liveSessions: number;
  liveKvBytes: number;
  systemMaxSessions: number;
  systemMaxKvBytes: number;
  /** Estimated prompt tokens + max_tokens. */
  requestTokens: number;
}

export type AdmissionRejection = Extract<AdmissionDecision, { admitted: false }>;

/**
 * The part of the check that needs nothing of the request (no body read): no routable worker, or
 * no room for one more session. Undefined when both pass.
 */
export function fleetRefusal(i: Pick<AdmissionInput, "capacity" | "liveSessions" | "systemMaxSessions">): AdmissionRejection | undefined {
  if (i.capacity.routable === 0) return { admitted: false, reason: "no_workers", message: "no worker is available" };
  const maxSessions = Math.min(i.systemMaxSessions, i.capacity.maxSessions);
  if (i.liveSessions + 1 > maxSessions) {
    return { admitted: false, reason: "system_sessions_full", message: `system holds its limit of ${maxSessions} sessions` };
  }
  return undefined;
}

export function admit(i: AdmissionInput): AdmissionDecision {
  const refused = fleetRefusal(i);
  if (refused !== undefined) return refused;
  const kvEstimateBytes = i.requestTokens * i.capacity.maxKvBytesPerToken;
  const maxKv = Math.min(i.systemMaxKvBytes, i.capacity.maxKvBytes);
  if (i.liveKvBytes + kvEstimateBytes > maxKv) {
    return { admitted: false, reason: "system_kv_cache_full", message: `system KV cache is full (${i.liveKvBytes} of ${maxKv} bytes reserved)` };
  }
  return { admitted: true, kvEstimateBytes };
}
