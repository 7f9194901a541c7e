import type { Clock } from "../../common/clock.js";
import { ServingError } from "../../protocol/serving-error.js";
import { canonicalText } from "../../protocol/prefix-blocks.js";
import { neverFits } from "../admission/fit-check.js";
import type { PromptTokenEstimator } from "../admission/prompt-token-estimator.js";
import type { RateLimiter } from "../admission/rate-limiter.js";
import type { PrefixIndex, PrefixMatch } from "../fleet/prefix-index.js";
import type { WorkerTable } from "../fleet/worker-table.js";
import type { Candidate } from "../scheduler/types.js";
import { inputOf } from "./dispatcher.js";
import type { InferenceJob } from "./inference-job.js";
import type { PoisonGuard, RequestCrashes } from "./poison-guard.js";

/**
 * The plan step, before admission: what a request will cost and whether it may try at all. A
 * known poison request, a client over its token rate and a request no worker could ever hold are
 * refused here (thrown ServingErrors), before any worker is touched.
 */
export interface RequestPlan {
  /** The canonical model id serving the request. */
  model: string;
  /** Workers that died on this request so far (shared by its prefills and failovers). */
  crashes: RequestCrashes;
  promptBytes: number;
  /** Estimated prompt + generation tokens, for admission, the KV filters and the lease. */
  tokens: number;
  /** The prompt against the prefix index. */
  prefix: PrefixMatch;
  /** The request's number (the round-robin picker's cursor). */
  sequence: number;
  arrivedMs: number;
}

export interface PlanDeps {
  table: WorkerTable;
  clock: Clock;
  estimator: PromptTokenEstimator;
  rateLimiter: RateLimiter;
  index: PrefixIndex;
  poison: PoisonGuard;
  snapshot(): Candidate[];
}

/** Context assumed for a model whose workers report none (seed workers), in tokens. */
const FALLBACK_CONTEXT_TOKENS = 2048;
/** Bytes counted per chat message for the template's own text (role markers, separators). */
const CHAT_MESSAGE_OVERHEAD_BYTES = 16;

export function planRequest(job: InferenceJob, model: string, sequence: () => number, d: PlanDeps): RequestPlan {
  // A request that already took down two workers is refused before it touches a third.
  const crashes = d.poison.check(model, job);
  const promptBytes = promptBytesOf(job);
  // Without max_tokens the worker reserves the whole context; so does the estimate.
  const generation = job.maxTokens ?? (d.table.capacity(model).maxContextSize || FALLBACK_CONTEXT_TOKENS);
  const tokens = d.estimator.estimate(model, promptBytes) + generation;
  // The request itself was counted before its body was read (client-preflight.ts); its tokens now.
  const rate = d.rateLimiter.takeTokens(job.clientId, tokens, d.clock.now());
  if (!rate.ok) {
    job.log.info({ limit: rate.limit, client: job.clientId }, "ratelimit.reject");
    throw new ServingError("rate_limited", `rate limit of ${rate.limit} per minute reached`, { retryAfterS: rate.retryAfterS });
  }
  const never = neverFits(d.snapshot(), model, tokens, job.maxTokens);
  if (never !== undefined) {
    job.log.info({ reason: never.code, tokens }, "admission.never_fits");
    throw never;
  }
  return {
    model, crashes, promptBytes, tokens, sequence: sequence(),
    prefix: d.index.match(canonicalText(inputOf(job, undefined))), arrivedMs: d.clock.now(),
  };
}

function promptBytesOf(job: InferenceJob): number {
  if (job.messages === undefined) return Buffer.byteLength(job.prompt ?? "");
  let n = 0;
  for (const m of job.messages) n += Buffer.byteLength(m.content) + CHAT_MESSAGE_OVERHEAD_BYTES;
  return n;
}
