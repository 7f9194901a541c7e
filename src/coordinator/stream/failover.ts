import { Readable } from "node:stream";
import type { Logger } from "../../common/logger.js";
import { ServingError } from "../../protocol/serving-error.js";
import type { WorkerFailure } from "./worker-stream.js";
import type { UpstreamSource } from "./upstream.js";

/**
 * Continues an answer whose worker failed mid-decode on another worker: the failed one is
 * stopped, blamed on its breaker (a stall as a timeout, anything else as a broken stream) and its
 * session cancelled; then a continuation (the prompt followed by the text already relayed) is
 * dispatched elsewhere, up to MAX_FAILOVERS times. A grammar constrains the whole answer from its
 * start, so an answer under one is never continued. A worker that died counts toward the
 * request's poison verdict: the second death ends the answer with that code (thrown).
 */
/** `U`: what its stream is read through (the coordinator's own exchange, or any Readable). */
export interface StreamingWorker<U extends UpstreamSource = Readable> {
  readonly workerId: string;
  readonly workerUrl: string;
  readonly sessionId: string;
  readonly upstream: U;
  /** Closes the decode request (and a prefill in flight). */
  readonly abort: AbortController;
}

export interface FailoverDeps<W extends StreamingWorker<UpstreamSource>> {
  requestId: string;
  log: Logger;
  maxFailovers: number;
  /** The answer is under a grammar or a JSON schema. */
  constrained: boolean;
  /** The client's max_tokens, undefined for the rest of the context. */
  maxTokens: number | undefined;
  recordFault(workerId: string, kind: "timeout" | "stream"): void;
  cancel(worker: W): void;
  /** A poison verdict when this death is the request's second, else undefined. */
  workerDied(workerId: string): ServingError | undefined;
  /** Dispatches the continuation (never on a worker the answer has used). */
  continueOn(relayed: { text: string; tokens: number }, remaining: number | undefined, signal: AbortSignal): Promise<W>;
}

export class Failover<W extends StreamingWorker<UpstreamSource>> {
  private left: number;

  constructor(private current: W, private readonly d: FailoverDeps<W>) {
    this.left = d.maxFailovers;
  }

  /** The worker streaming now (differs from the first after a failover). */
  get worker(): W {
    return this.current;
  }

  /** Resolves with the next worker's stream, or undefined when the answer ends with the failure. */
  async continue(failure: WorkerFailure, relayed: { text: string; tokens: number }, signal: AbortSignal): Promise<W["upstream"] | Readable | undefined> {
    const failed = this.current;
    const { d } = this;
    failed.abort.abort();
    d.recordFault(failed.workerId, failure.code === "worker_stalled" ? "timeout" : "stream");
    d.cancel(failed);
    // A worker that died mid-stream counts like one that died in prefill; the second death ends it.
    if (failure.died === true) {
      const poison = d.workerDied(failed.workerId);
      if (poison !== undefined) throw poison;
    }
    const remaining = d.maxTokens === undefined ? undefined : d.maxTokens - relayed.tokens;
    // Every token the client asked for was relayed; only the worker's end event was lost (a worker cut
    // off right after its last token): the answer is complete, not failed.
    if (remaining !== undefined && remaining <= 0 && !signal.aborted) {
      d.log.warn({ request_id: d.requestId, worker_id: failed.workerId, reason: failure.code, relayed_tokens: relayed.tokens }, "stream.end_event_lost");
      return lengthEnd(relayed.tokens);
    }
    if (this.left <= 0 || d.constrained || signal.aborted) return undefined;
    this.left--;
    d.log.warn({ request_id: d.requestId, worker_id: failed.workerId, reason: failure.code, relayed_tokens: relayed.tokens }, "stream.failover");
    try {
      this.current = await d.continueOn(relayed, remaining, signal);
      return this.current.upstream;
    } catch (err) {
      if (err instanceof ServingError && err.code === "request_crashed_worker") throw err;
      d.log.warn({ request_id: d.requestId, err: (err as Error).message }, "stream.failover_failed");
      return undefined;
    }
  }
}

/** The end event the worker would have sent after its last token: finish reason `length`. */
function lengthEnd(completionTokens: number): Readable {
  return Readable.from([`data: ${JSON.stringify({ token: "", finished: true, reason: "length", completion_tokens: completionTokens })}\n\n`]);
}
