import type { RouteContext } from "../common/http-server.js";
import { disabledTracer } from "../common/tracer.js";
import type { CacheNotice, WorkerHealth } from "../protocol/heartbeat.js";
import { HandoffRoutes } from "./handoff-routes.js";
import type { KvCostModel } from "./kv-restore-rule.js";
import type { KvTiers } from "./kv-tiers.js";
import { SessionRoutes } from "./session-routes.js";
import { SessionTable } from "./session-table.js";
import { WorkerDrain } from "./worker-drain.js";
import { WorkerMetrics } from "./worker-metrics.js";
import type { WorkerServiceOptions } from "./worker-service-options.js";
import { WorkerViews, type WorkerCacheListing } from "./worker-views.js";

export type { WorkerServiceOptions } from "./worker-service-options.js";
export type { WorkerCacheListing } from "./worker-views.js";

/**
 * The worker's behaviour behind its HTTP routes, as start-worker.ts wires it: the session routes
 * (session-routes.ts), the handoff routes (handoff-routes.ts), the health and cache views
 * (worker-views.ts), over one session table and one drain state (worker-drain.ts).
 */
export class WorkerService {
  readonly sessions: SessionTable;
  readonly metrics: WorkerMetrics;
  private readonly state: WorkerDrain;
  private readonly views: WorkerViews;
  private readonly sessionRoutes: SessionRoutes;
  private readonly handoffRoutes: HandoffRoutes;

  constructor(o: WorkerServiceOptions) {
    this.sessions = new SessionTable(o.engine, o.limits, o.clock, o.log);
    this.state = new WorkerDrain(this.sessions);
    this.views = new WorkerViews(o, this.sessions, this.state);
    this.metrics = new WorkerMetrics(() => this.views.metricsView(), () => o.clock.now(), { vllm: o.vllmMetrics ?? true });
    this.sessions.onEnd = (session, reason) => this.metrics.sessionEnded(reason, session.createdMs);
    this.sessionRoutes = new SessionRoutes(o, this.sessions, this.metrics, o.tracer ?? disabledTracer, this.state);
    this.handoffRoutes = new HandoffRoutes(o, this.sessions, this.state);
  }

  get isDraining(): boolean {
    return this.state.draining;
  }

  health(): WorkerHealth {
    return this.views.health();
  }

  /** The prefix cache as published to coordinators, with what each sequence actually holds (`GET /worker/cache`). */
  cacheListing(): WorkerCacheListing {
    return this.views.cacheListing();
  }

  /** Turns the KV tiers on (start-worker.ts, after the calibration). */
  attachTiers(store: KvTiers, costs: KvCostModel): void {
    this.sessions.tiers = { store, costs };
    // Tier holdings are published like kept sequences, with their tier (prefix-index.ts).
    store.events = this.sessions.cacheLog;
  }

  kvTierHealth(): WorkerHealth["kv_tiers"] {
    return this.views.kvTierHealth();
  }

  prefill(ctx: RouteContext): Promise<void> {
    return this.sessionRoutes.prefill(ctx);
  }

  generate(ctx: RouteContext): Promise<void> {
    return this.sessionRoutes.generate(ctx);
  }

  decode(ctx: RouteContext): Promise<void> {
    return this.sessionRoutes.decode(ctx);
  }

  cancel(ctx: RouteContext, body: { session_id: string }): void {
    this.sessionRoutes.cancel(ctx, body);
  }

  cancelRoute(ctx: RouteContext): Promise<void> {
    return this.sessionRoutes.cancelRoute(ctx);
  }

  drainRoute(ctx: RouteContext): Promise<void> {
    return this.handoffRoutes.drainRoute(ctx);
  }

  undrainRoute(ctx: RouteContext): void {
    this.handoffRoutes.undrainRoute(ctx);
  }

  adoptRoute(ctx: RouteContext): Promise<void> {
    return this.handoffRoutes.adoptRoute(ctx);
  }

  exportRoute(ctx: RouteContext): Promise<void> {
    return this.handoffRoutes.exportRoute(ctx);
  }

  /** Told when a coordinator asked this worker to drain or undrain (to announce it in a heartbeat at once). */
  get onDrainRequested(): (() => void) | undefined {
    return this.handoffRoutes.onDrainRequested;
  }
  set onDrainRequested(f: (() => void) | undefined) {
    this.handoffRoutes.onDrainRequested = f;
  }

  /**
   * Resolves once every coordinator heartbeated has this cache event, or after a bounded wait
   * (CACHE_ANNOUNCE_WAIT_MS): a completed stream's last event waits for it.
   */
  get announceCache(): ((notice: CacheNotice) => Promise<boolean>) | undefined {
    return this.sessionRoutes.announceCache;
  }
  set announceCache(f: ((notice: CacheNotice) => Promise<boolean>) | undefined) {
    this.sessionRoutes.announceCache = f;
  }

  /** Refuses new sessions and resolves when running ones are done (or `timeoutMs` passed). */
  drain(timeoutMs: number): Promise<void> {
    return this.state.drain(timeoutMs);
  }

  sweep(): void {
    this.state.sweep();
  }
}
