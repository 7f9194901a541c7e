import type { Clock } from "../../common/clock.js";
import type { RouteContext } from "../../common/http-server.js";
import { ServingError } from "../../protocol/serving-error.js";
import type { CapLease, ClientCaps } from "../admission/client-caps.js";
import type { RateLimiter } from "../admission/rate-limiter.js";

/**
 * The cheap refusals of an inference request, run after authentication and before its body is
 * read or parsed: the client's request rate (RATE_LIMIT_RPM), its cap on requests in flight
 * (MAX_STREAMS_PER_KEY), and a fleet at its session limit with no room in the queue (503
 * system_sessions_full, or 429 queue_full). The in-flight place is released when the response
 * closes, however it ends.
 */
export interface PreflightDeps {
  rateLimiter: RateLimiter;
  caps: ClientCaps;
  clock: Clock;
  /** The refusal at capacity that needs no body (InferencePipeline.refusalBeforeBody), if any. */
  refusalBeforeBody?(requestId: string): ServingError | undefined;
}

export function clientPreflight(ctx: RouteContext, d: PreflightDeps): void {
  // The cap first: a request it refuses does not spend the client's rate.
  let lease: CapLease;
  try {
    lease = d.caps.enterStream(ctx.clientId);
  } catch (err) {
    ctx.log.info({ reason: "too_many_streams", client: ctx.clientId }, "ratelimit.reject");
    throw err;
  }
  const rate = d.rateLimiter.takeRequest(ctx.clientId, d.clock.now());
  if (!rate.ok) {
    lease.release();
    ctx.log.info({ limit: rate.limit, client: ctx.clientId }, "ratelimit.reject");
    throw new ServingError("rate_limited", `rate limit of ${rate.limit} per minute reached`, { retryAfterS: rate.retryAfterS });
  }
  // At capacity with no room to wait: answered now, from the counts, without reading the body.
  const full = d.refusalBeforeBody?.(ctx.requestId);
  if (full !== undefined) {
    lease.release();
    ctx.log.info({ reason: full.code, body: "unread" }, "scheduler.reject");
    throw full;
  }
  ctx.res.once("close", () => lease.release());
}
