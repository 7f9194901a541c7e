import type { Clock } from "../../common/clock.js";
import { RateWindow } from "../../common/rate-window.js";
import { disabledTracer, type Tracer } from "../../common/tracer.js";
import type { ServingError } from "../../protocol/serving-error.js";
import { bump, CoordinatorMetrics } from "./coordinator-metrics.js";
import { FleetSeries } from "./fleet-series.js";
import { RecentRequests } from "./recent-requests.js";
import { RequestTelemetry, type TelemetryJob } from "./request-telemetry.js";
import type { SessionTracker } from "../fleet/session-tracker.js";
import type { WorkerTable } from "../fleet/worker-table.js";

/**
 * Everything the coordinator observes about requests, in one object the pipeline holds: Prometheus
 * metrics, the dashboard's time series and recent requests, per-worker token rates, and the tracer.
 * `begin` hands each request its RequestTelemetry, which feeds all of them.
 */
export interface CoordinatorTelemetryDeps {
  table: WorkerTable;
  tracker: SessionTracker;
  clock: Clock;
  tracer?: Tracer;
  /** Requests waiting in the admission queue (the queue-length gauge and the dashboard read it). */
  queueLength?: () => number;
  /** Prometheus' process and Node.js metrics (default on; tests that build many coordinators turn them off). */
  defaultMetrics?: boolean;
}

export class CoordinatorTelemetry {
  readonly metrics: CoordinatorMetrics;
  readonly series = new FleetSeries();
  readonly recent = new RecentRequests();
  readonly tracer: Tracer;
  readonly clock: Clock;
  /** Requests waiting for admission, read from the admission queue. */
  readonly queueLength: () => number;
  private readonly workerRates = new Map<string, RateWindow>();

  constructor(private readonly d: CoordinatorTelemetryDeps) {
    this.clock = d.clock;
    this.tracer = d.tracer ?? disabledTracer;
    this.queueLength = d.queueLength ?? (() => 0);
    this.metrics = new CoordinatorMetrics(
      {
        table: d.table, tracker: d.tracker, now: () => d.clock.now(),
        queueLength: () => this.queueLength(),
        workerTokenRate: (id) => this.workerTokenRate(id),
      },
      { defaultMetrics: d.defaultMetrics },
    );
    d.table.onChange((id, event) => {
      if (event === "left") this.workerRates.delete(id);
    });
  }

  /** A stream continued on another worker. */
  failover(): void {
    this.metrics.failovers++;
  }

  /** A request refused before its body was read (so no model is known): counted, and listed. */
  refusedUnread(requestId: string, err: ServingError): void {
    const now = this.clock.now();
    bump(this.metrics.rejected, err.code);
    this.series.rejected(now);
    const record = this.recent.open(requestId, "", undefined, this.clock.wallNow(), now);
    record.state = "rejected";
    record.outcome = err.code;
    record.add("rejected", now, { code: err.code, message: err.message, body: "unread" });
  }

  begin(job: TelemetryJob): RequestTelemetry {
    return new RequestTelemetry(this, job);
  }

  /** The rate window of a worker's relayed tokens (created on first use). */
  workerRate(workerId: string): RateWindow {
    let w = this.workerRates.get(workerId);
    if (w === undefined) this.workerRates.set(workerId, (w = new RateWindow(10)));
    return w;
  }

  workerTokenRate(workerId: string): number {
    return this.workerRates.get(workerId)?.rate(this.clock.now()) ?? 0;
  }
}
