/**
 * The coordinator's live sessions: one lease per request from dispatch to its end, holding the KV
 * bytes it reserved and the worker it runs on. The totals (for admission) and the per-worker counts
 * (for scheduling: load counts from dispatch, not from the first token) are updated in this one
 * object when a lease opens, moves, trues up or is released.
 */
export interface WorkerLoad {
  sessions: number;
  kvBytes: number;
}

export class SessionLease {
  private released = false;

  constructor(
    private readonly tracker: SessionTracker,
    readonly requestId: string,
    public workerId: string,
    public kvBytes: number,
  ) {}

  get isReleased(): boolean {
    return this.released;
  }

  /** Replaces the estimate with the worker's exact reservation. */
  trueUp(kvBytes: number): void {
    if (this.released) return;
    this.tracker.adjust(this.workerId, kvBytes - this.kvBytes, 0);
    this.kvBytes = kvBytes;
  }

  moveTo(workerId: string): void {
    if (this.released || workerId === this.workerId) return;
    this.tracker.adjust(this.workerId, -this.kvBytes, -1);
    this.workerId = workerId;
    this.tracker.adjust(workerId, this.kvBytes, 1);
  }

  release(): void {
    if (this.released) return;
    this.released = true;
    this.tracker.adjust(this.workerId, -this.kvBytes, -1);
  }
}

const NO_LOAD: Readonly<WorkerLoad> = Object.freeze({ sessions: 0, kvBytes: 0 });

export class SessionTracker {
  private sessions = 0;
  private kvBytes = 0;
  private readonly perWorker = new Map<string, WorkerLoad>();

  /** Called whenever capacity frees (a lease released or trued down): wakes the admission queue. */
  onFreed: (() => void) | undefined;

  get count(): number {
    return this.sessions;
  }

  get kvReservedBytes(): number {
    return this.kvBytes;
  }

  open(requestId: string, workerId: string, kvBytes: number): SessionLease {
    this.adjust(workerId, kvBytes, 1);
    return new SessionLease(this, requestId, workerId, kvBytes);
  }

  /** This coordinator's live load on a worker (read it now: it is the tracker's own, updated in place). */
  load(workerId: string): Readonly<WorkerLoad> {
    return this.perWorker.get(workerId) ?? NO_LOAD;
  }

  /** @internal used by leases only */
  adjust(workerId: string, dKv: number, dSessions: number): void {
    this.sessions += dSessions;
    this.kvBytes += dKv;
    let w = this.perWorker.get(workerId);
    if (w === undefined) this.perWorker.set(workerId, (w = { sessions: 0, kvBytes: 0 }));
    w.sessions += dSessions;
    w.kvBytes += dKv;
    if (w.sessions === 0) this.perWorker.delete(workerId);
    if (dSessions < 0 || dKv < 0) this.onFreed?.();
  }
}
