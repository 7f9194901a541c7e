import type { Clock } from "../../common/clock.js";
import { ServingError } from "../../protocol/serving-error.js";
import type { CoordinatorMetrics } from "../telemetry/coordinator-metrics.js";
import type { InferenceJob } from "./inference-job.js";
import { PoisonStore } from "./poison-store.js";
import { requestFingerprint } from "./request-fingerprint.js";

/**
 * Containment of a query of death. A worker that dies handling a request (its connection closed or
 * reset after the request was sent) makes the request suspect; the pipeline then tries it once
 * more at most. A second death makes it poison: answered 502 `request_crashed_worker`, logged at
 * error level with its fingerprint, counted, and remembered (POISON_TTL_MS, POISON_MAX_ENTRIES) so
 * that an identical request is refused before it touches a worker.
 */
export interface RequestCrashes {
  readonly fingerprint: string;
  /** Workers that died on the request so far (its prefills and failovers together). */
  readonly workers: string[];
}

class CrashRecord implements RequestCrashes {
  readonly workers: string[] = [];
  private hash: string | undefined;

  constructor(
    private readonly model: string,
    private readonly job: Pick<InferenceJob, "prompt" | "messages" | "sampling">,
  ) {}

  get fingerprint(): string {
    return (this.hash ??= requestFingerprint(this.model, this.job));
  }
}

/** Worker deaths after which a request is poison: one retry of a suspect request, never two. */
export const POISON_AFTER_DEATHS = 2;

export class PoisonGuard {
  readonly store: PoisonStore;

  constructor(private readonly o: { ttlMs: number; maxEntries: number; clock: Clock; metrics: CoordinatorMetrics }) {
    this.store = new PoisonStore({ ttlMs: o.ttlMs, maxEntries: o.maxEntries });
  }

  /** The request's crash record; throws `request_crashed_worker` when an identical request was poison. */
  check(model: string, job: InferenceJob): RequestCrashes {
    const crashes = new CrashRecord(model, job);
    // The fingerprint (a sha256 over the canonical request) is computed only when it is needed: a
    // store holding anything, or a worker dying on the request.
    if (this.store.size > 0 && this.store.has(crashes.fingerprint, this.o.clock.now())) {
      this.o.metrics.poisonRefusals++;
      job.log.warn({ fingerprint: crashes.fingerprint }, "request.poison_refused");
      throw new ServingError("request_crashed_worker", "an identical request made workers fail and is refused for now", {
        details: { fingerprint: crashes.fingerprint },
      });
    }
    return crashes;
  }

  /** A worker died on the request: undefined while it is merely suspect, the error to answer once it is poison. */
  workerDied(job: InferenceJob, crashes: RequestCrashes, workerId: string): ServingError | undefined {
    crashes.workers.push(workerId);
    if (crashes.workers.length < POISON_AFTER_DEATHS) {
      job.log.warn({ fingerprint: crashes.fingerprint, worker_id: workerId }, "request.suspect");
      return undefined;
    }
    this.store.remember(crashes.fingerprint, this.o.clock.now());
    this.o.metrics.poisonRequests++;
    job.log.error({ fingerprint: crashes.fingerprint, workers: crashes.workers, ttl_ms: this.o.ttlMs }, "request.poison");
    return new ServingError("request_crashed_worker", `workers died handling this request (${crashes.workers.join(", ")}); it is not retried`, {
      details: { fingerprint: crashes.fingerprint },
    });
  }
}
