import type { Clock } from "../../common/clock.js";
import type { Heartbeat, WorkerHealth } from "../../protocol/heartbeat.js";
import { CircuitBreaker, type FaultKind } from "./circuit-breaker.js";
import type { WorkerLoad } from "./session-tracker.js";

/**
 * What the coordinator knows of each worker: the last heartbeat, stamped with the coordinator's own
 * receive time. Freshness is a predicate (a beat within 3 of the worker's intervals); faults feed
 * each worker's circuit breaker, which takes it out of rotation at once on a connection failure or
 * timeout. Soft state only: a restarted coordinator rebuilds the table from the next beats.
 *
 * The aggregates that admission reads (capacity of routable workers, per model) are recomputed here
 * whenever the table changes, so a request reads them in O(1).
 */
export interface WorkerEntry {
  readonly id: string;
  url: string;
  health: WorkerHealth;
  /** Coordinator-clock ms of the last heartbeat. */
  lastSeenMs: number;
  intervalMs: number;
  /** Worker faults seen by this coordinator: closed, open or half-open. */
  readonly breaker: CircuitBreaker;
  /** Set by the heartbeat sweep once the worker missed its beats. */
  expired: boolean;
  /** This coordinator's own sessions on the worker when its last heartbeat arrived. */
  ownAtBeat: WorkerLoad;
}

export interface CapacityAggregate {
  /** Workers that are fresh, healthy and not draining. */
  routable: number;
  maxSessions: number;
  maxKvBytes: number;
  /** Largest KV cost of a token among them (for conservative estimates). */
  maxKvBytesPerToken: number;
  /** Largest context among them (tokens; 0 when none reports one). */
  maxContextSize: number;
}

export const MISSED_BEATS_TO_EXPIRE = 3;
/** Expired entries stay listed (for operators) this many intervals before removal. */
const FORGET_AFTER_BEATS = 30;

/** Whether two reports of a worker agree on everything the aggregates (and the model names) read. */
function sameCapacity(a: WorkerHealth, b: WorkerHealth): boolean {
  if (a === b) return true;
  if (a.alive !== b.alive || a.draining !== b.draining) return false;
  if (a.limits.max_sessions !== b.limits.max_sessions || a.limits.max_kv_bytes !== b.limits.max_kv_bytes) return false;
  const am = a.model;
  const bm = b.model;
  if (am.id !== bm.id || am.kv_bytes_per_token !== bm.kv_bytes_per_token || am.context_size !== bm.context_size) return false;
  if (am.aliases.length !== bm.aliases.length) return false;
  for (let i = 0; i < am.aliases.length; i++) if (am.aliases[i] !== bm.aliases[i]) return false;
  return true;
}

const emptyAggregate = (): CapacityAggregate => ({ routable: 0, maxSessions: 0, maxKvBytes: 0, maxKvBytesPerToken: 0, maxContextSize: 0 });

export class WorkerTable {
  private readonly entries = new Map<string, WorkerEntry>();
  private total: CapacityAggregate = emptyAggregate();
  private perModel = new Map<string, CapacityAggregate>();
  /** Names (ids and aliases) → canonical model id. */
  private names = new Map<string, string>();
  private listeners: ((id: string, event: "joined" | "left") => void)[] = [];

  constructor(
    private readonly clock: Clock,
    private readonly defaultIntervalMs: number,
  ) {}

  onChange(listener: (id: string, event: "joined" | "left") => void): void {
    this.listeners.push(listener);
  }

  /** Records a heartbeat; `own` is this coordinator's live load on that worker as it arrives. */
  upsert(hb: Heartbeat, own: WorkerLoad = { sessions: 0, kvBytes: 0 }): WorkerEntry {
    const now = this.clock.now();
    let e = this.entries.get(hb.worker_id);
    const joined = e === undefined || e.expired;
    // Most beats change only counts (sessions, KV in use): the aggregates are rebuilt (O(workers))
    // only when what they read changed, or the worker's routability did.
    const before = e === undefined ? undefined : { routable: this.isRoutable(e, now), health: e.health };
    if (e === undefined) {
      e = {
        id: hb.worker_id, url: hb.worker_url, health: hb.health, lastSeenMs: now, intervalMs: 0, breaker: new CircuitBreaker(), expired: false,
        ownAtBeat: { sessions: 0, kvBytes: 0 },
      };
      this.entries.set(e.id, e);
    }
    e.url = hb.worker_url;
    e.health = hb.health;
    e.lastSeenMs = now;
    e.ownAtBeat = { sessions: own.sessions, kvBytes: own.kvBytes };
    e.intervalMs = hb.interval_ms ?? this.defaultIntervalMs;
    e.breaker.heartbeat(now);
    e.expired = false;
    if (before === undefined || before.routable !== this.isRoutable(e, now) || !sameCapacity(before.health, e.health)) this.recompute();
    if (joined) for (const l of this.listeners) l(e.id, "joined");
    return e;
  }

  /** Takes a worker out of routing at once, before its next heartbeat says it drains. */
  markDraining(id: string): void {
    const e = this.entries.get(id);
    if (e === undefined || e.health.draining) return;
    e.health = { ...e.health, draining: true };
    this.recompute();
  }

  /** Back in routing after an operator's undrain, before its next heartbeat says so. */
  markUndrained(id: string): void {
    const e = this.entries.get(id);
    if (e === undefined || !e.health.draining) return;
    e.health = { ...e.health, draining: false };
    this.recompute();
  }

  /** A worker fault (never a client's 4xx): feeds the breaker, which may open at once. */
  recordFault(id: string, kind: FaultKind): void {
    const e = this.entries.get(id);
    if (e === undefined) return;
    const before = e.breaker.state(this.clock.now());
    e.breaker.fault(kind, this.clock.now());
    if (e.breaker.state(this.clock.now()) !== before) this.recompute();
  }

  recordSuccess(id: string): void {
    const e = this.entries.get(id);
    if (e === undefined) return;
    const before = e.breaker.state(this.clock.now());
    e.breaker.success(this.clock.now());
    if (before !== "closed") this.recompute();
  }

  /** Called after a worker is picked: in half-open, this request is the breaker's one probe. */
  dispatched(id: string): void {
    this.entries.get(id)?.breaker.dispatched(this.clock.now());
  }

  /**
   * A worker's load for scheduling: this coordinator's own live sessions (exact, updated at
   * dispatch and release) plus those the last heartbeat counted beyond this coordinator's own at
   * that moment (other coordinators', direct clients'). Taking the heartbeat's count as it stands
   * would keep sessions that ended since the beat, up to an interval (10 s) long: a fleet that just
   * finished a burst at capacity would refuse the next one while idle.
   */
  load(e: WorkerEntry, own: WorkerLoad): WorkerLoad {
    const h = e.health;
    return {
      sessions: own.sessions + Math.max(0, h.active_sessions - e.ownAtBeat.sessions),
      kvBytes: own.kvBytes + Math.max(0, h.kv_reserved_bytes - e.ownAtBeat.kvBytes),
    };
  }

  isFresh(e: WorkerEntry, now = this.clock.now()): boolean {
    return !e.expired && now - e.lastSeenMs <= MISSED_BEATS_TO_EXPIRE * e.intervalMs;
  }

  isRoutable(e: WorkerEntry, now = this.clock.now()): boolean {
    return this.isFresh(e, now) && e.breaker.state(now) !== "open" && e.health.alive && !e.health.draining;
  }

  /** Expires workers that missed their beats; forgets long-expired ones. Call periodically. */
  sweep(): void {
    const now = this.clock.now();
    // Breakers whose cooldown ended become routable again (half-open) without any event.
    let changed = this.lastOpen !== this.countOpen(now);
    for (const e of [...this.entries.values()]) {
      if (!e.expired && !this.isFresh(e, now)) {
        e.expired = true;
        changed = true;
        for (const l of this.listeners) l(e.id, "left");
      }
      if (e.expired && now - e.lastSeenMs > FORGET_AFTER_BEATS * e.intervalMs) {
        this.entries.delete(e.id);
        changed = true;
      }
    }
    if (changed) this.recompute();
  }

  /** Entries held, expired ones included (the table's memory bound counts them). */
  get size(): number {
    return this.entries.size;
  }

  /** Forgets the expired entry seen longest ago, to make room; false when none is expired. */
  forgetOneExpired(): boolean {
    let oldest: WorkerEntry | undefined;
    for (const e of this.entries.values()) if (e.expired && (oldest === undefined || e.lastSeenMs < oldest.lastSeenMs)) oldest = e;
    if (oldest === undefined) return false;
    this.entries.delete(oldest.id);
    return true;
  }

  get(id: string): WorkerEntry | undefined {
    return this.entries.get(id);
  }

  list(): WorkerEntry[] {
    return [...this.entries.values()];
  }

  /** The entries without a copy (do not add or remove while iterating). */
  values(): IterableIterator<WorkerEntry> {
    return this.entries.values();
  }

  capacity(model?: string): CapacityAggregate {
    if (model === undefined) return this.total;
    return this.perModel.get(model) ?? emptyAggregate();
  }

  /** Canonical model id for a requested name (id or alias), if a routable worker serves it. */
  modelFor(name: string): string | undefined {
    return this.names.get(name);
  }

  /**
   * The models routable workers serve, sorted by id: aliases merged over the workers serving each,
   * `created` the earliest any of them reports (unix seconds; undefined when none does).
   */
  modelInfos(): { id: string; aliases: string[]; created: number | undefined; workers: number }[] {
    const now = this.clock.now();
    const out = new Map<string, { id: string; aliases: Set<string>; created: number | undefined; workers: number }>();
    for (const e of this.entries.values()) {
      if (!this.isRoutable(e, now)) continue;
      const m = e.health.model;
      let info = out.get(m.id);
      if (info === undefined) out.set(m.id, (info = { id: m.id, aliases: new Set(), created: undefined, workers: 0 }));
      info.workers++;
      for (const a of m.aliases) if (a !== m.id) info.aliases.add(a);
      if (m.created !== undefined && (info.created === undefined || m.created < info.created)) info.created = m.created;
    }
    return [...out.values()].sort((a, b) => (a.id < b.id ? -1 : 1)).map((i) => ({ ...i, aliases: [...i.aliases].sort() }));
  }

  /** Model ids served by routable workers, sorted. */
  models(): string[] {
    return [...this.perModel.keys()].sort();
  }

  private lastOpen = 0;

  private countOpen(now: number): number {
    let n = 0;
    for (const e of this.entries.values()) if (e.breaker.state(now) === "open") n++;
    return n;
  }

  private recompute(): void {
    const now = this.clock.now();
    this.lastOpen = this.countOpen(now);
    const total = emptyAggregate();
    const perModel = new Map<string, CapacityAggregate>();
    const names = new Map<string, string>();
    for (const e of this.entries.values()) {
      if (!this.isRoutable(e, now)) continue;
      const id = e.health.model.id;
      let m = perModel.get(id);
      if (m === undefined) perModel.set(id, (m = emptyAggregate()));
      for (const agg of [total, m]) {
        agg.routable++;
        agg.maxSessions += e.health.limits.max_sessions;
        agg.maxKvBytes += e.health.limits.max_kv_bytes;
        agg.maxKvBytesPerToken = Math.max(agg.maxKvBytesPerToken, e.health.model.kv_bytes_per_token);
        agg.maxContextSize = Math.max(agg.maxContextSize, e.health.model.context_size);
      }
      names.set(id, id);
      for (const alias of e.health.model.aliases) if (!names.has(alias)) names.set(alias, id);
    }
    this.total = total;
    this.perModel = perModel;
    this.names = names;
  }
}
