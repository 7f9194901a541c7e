import type { Clock } from "../../common/clock.js";
import type { CoordinatorConfig } from "../../common/config.js";
import type { Logger } from "../../common/logger.js";
import { ServingError } from "../../protocol/serving-error.js";
import { admit, fleetRefusal, type AdmissionDecision } from "./admission.js";
import type { AdmissionQueue, QueueTicket } from "./admission-queue.js";
import type { CapLease, ClientCaps } from "./client-caps.js";
import type { Decision } from "../scheduler/types.js";
import type { SessionTracker } from "../fleet/session-tracker.js";
import type { WorkerTable } from "../fleet/worker-table.js";

/**
 * Whether a request may go now: the O(1) admission check against the fleet's aggregates, then a
 * first scheduling decision (whose filters know each worker's room); at capacity, a wait in the
 * admission queue (admission-queue.ts) when it is on. While anyone waits, a new request queues
 * behind them.
 *
 * The fast path (empty queue, capacity free) answers synchronously, so the caller claims the
 * capacity in the same turn of the event loop as the check. After a wait, the answer holds the
 * ticket, still first in line: nobody else is woken until the caller, having claimed, calls
 * `ticket.leave()`.
 */
export interface Admitted {
  readonly admission: Extract<AdmissionDecision, { admitted: true }>;
  /** The first attempt's decision (ok). */
  readonly decision: Extract<Decision, { ok: true }>;
  /** Present after a wait: leave it once the capacity is claimed. */
  readonly ticket: QueueTicket | undefined;
  /** Time spent in the queue (ms). */
  readonly queuedMs: number;
}

export interface GateRequest {
  model: string;
  /** Estimated prompt tokens + max_tokens. */
  tokens: number;
  priority: number;
  /** Who asks (an API key's id or an address), for the per-client cap on queued requests. */
  clientId: string;
  signal: AbortSignal;
  log: Logger;
  onQueued?: (position: number, size: number) => void;
  /** A scheduling decision excluding nobody. */
  decide(): Decision;
}

export interface GateDeps {
  config: CoordinatorConfig;
  table: WorkerTable;
  tracker: SessionTracker;
  queue: AdmissionQueue;
  clock: Clock;
  caps: ClientCaps;
}

/** Capacity refusals that a request may wait out in the admission queue. */
const QUEUEABLE = new Set(["system_sessions_full", "system_kv_cache_full"]);

type Verdict = { ok: true; admission: Admitted["admission"]; decision: Admitted["decision"] } | { ok: false; error: ServingError };

export class AdmissionGate {
  constructor(private readonly d: GateDeps) {}

  /** Admitted now (synchronously), or a promise of admission after a wait; throws a ServingError. */
  enter(r: GateRequest): Admitted | Promise<Admitted> {
    const verdict = this.check(r);
    if (verdict.ok && this.d.queue.size === 0) return { ...verdict, ticket: undefined, queuedMs: 0 };
    this.refuseUnlessQueueable(r, verdict);
    return this.wait(r, verdict);
  }

  /**
   * The refusal every request gets now, whatever it asks, from the counts alone (O(1); nothing is
   * allocated unless it refuses): the fleet holds its session limit (the same check and answer as
   * `admit`) and the queue cannot take the request (off: 503 system_sessions_full; full: 429
   * queue_full, unless a per-client queue cap may answer first). Run before the request's body is
   * read, so a refusal at overload costs no parse, no plan and no scheduling. Undefined: the
   * request must be read to decide (with no routable worker the answer depends on its model).
   */
  refusalBeforeBody(): ServingError | undefined {
    const { table, tracker, config, queue, caps } = this.d;
    const full = fleetRefusal({ capacity: table.capacity(), liveSessions: tracker.count, systemMaxSessions: config.systemMaxSessions });
    if (full?.reason !== "system_sessions_full") return undefined;
    if (!queue.enabled) return new ServingError(full.reason, full.message);
    return caps.queueCapped ? undefined : queue.refusalIfFull();
  }

  private async wait(r: GateRequest, first: Verdict): Promise<Admitted> {
    const { queue, clock } = this.d;
    const since = clock.now();
    // Before joining: one client may not fill the queue that every client shares.
    let place: CapLease;
    try {
      place = this.d.caps.enterQueue(r.clientId);
    } catch (err) {
      r.log.info({ reason: "too_many_queued", client: r.clientId }, "queue.reject");
      throw err;
    }
    const ticket = queue.enqueue({ priority: r.priority, signal: r.signal, ...(r.onQueued ? { onPosition: r.onQueued } : {}) });
    r.log.info({ priority: r.priority, queue_size: queue.size, reason: first.ok ? "queue_not_empty" : first.error.code }, "queue.wait");
    try {
      for (;;) {
        await ticket.turn();
        const verdict = this.check(r);
        if (verdict.ok && ticket.isFirst) {
          const queuedMs = clock.now() - since;
          r.log.info({ waited_ms: Math.round(queuedMs) }, "queue.admitted");
          return { ...verdict, ticket, queuedMs };
        }
        this.refuseUnlessQueueable(r, verdict);
      }
    } catch (err) {
      ticket.abandon();
      if (err instanceof ServingError && (err.code === "queue_full" || err.code === "queue_timeout")) {
        r.log.info({ reason: err.code, retry_after_s: err.retryAfterS, waited_ms: Math.round(clock.now() - since) }, "queue.reject");
      }
      throw err;
    } finally {
      place.release();
    }
  }

  private refuseUnlessQueueable(r: GateRequest, v: Verdict): void {
    if (v.ok || (this.d.queue.enabled && QUEUEABLE.has(v.error.code))) return;
    r.log.info({ reason: v.error.code }, "scheduler.reject");
    throw v.error;
  }

  private check(r: GateRequest): Verdict {
    const { table, tracker, config } = this.d;
    const admission = admit({
      capacity: { ...table.capacity(), routable: table.capacity(r.model).routable },
      liveSessions: tracker.count,
      liveKvBytes: tracker.kvReservedBytes,
      systemMaxSessions: config.systemMaxSessions,
      systemMaxKvBytes: config.systemMaxKvBytes,
      requestTokens: r.tokens,
    });
    if (!admission.admitted) return { ok: false, error: new ServingError(admission.reason, admission.message) };
    const decision = r.decide();
    if (!decision.ok) return { ok: false, error: noCandidate(decision) };
    return { ok: true, admission, decision };
  }
}

/** Why nothing could be scheduled, in the seed's reasons. */
export function noCandidate(d: Decision | undefined): ServingError {
  const dropped = d?.dropped ?? {};
  if (dropped.session_room) return new ServingError("system_sessions_full", "every worker serving this model holds its session limit");
  if (dropped.kv_room) return new ServingError("system_kv_cache_full", "no worker serving this model has room for the request's KV cache");
  return new ServingError("no_workers", "no worker is available for this model");
}
