import type { Clock } from "../common/clock.js";
import type { Logger } from "../common/logger.js";
import type { Tracer } from "../common/tracer.js";
import type { Engine } from "../engine/engine.js";
import type { SessionLimits } from "./session-table.js";

/** What a WorkerService is built from (start-worker.ts); its route classes read the same options. */
export interface WorkerServiceOptions {
  workerId: string;
  engine: Engine;
  limits: SessionLimits;
  channelTokens: number;
  modelAliases: readonly string[];
  /** The model file's modification time (unix seconds), shown as `created` in OpenAI's model list. */
  modelCreatedS?: number;
  clock: Clock;
  log: Logger;
  /** Spans of prefill and decode, children of the coordinator's (W3C traceparent); off by default. */
  tracer?: Tracer;
  /** Also expose vLLM's metric names (default true). */
  vllmMetrics?: boolean;
  /** Largest adopt body another worker accepts (its MAX_BODY_BYTES; this worker's is assumed). */
  transferMaxBytes?: number;
}
