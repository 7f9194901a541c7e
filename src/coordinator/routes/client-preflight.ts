import type { Clock } from "../../common/clock.js";
import type { RouteContext } from "../../common/http-server.js";
import { ServingError } from "../../protocol/serving-error.js";
import type { CapLease, ClientCaps } from "../admission/client-caps.js";
import type { RateLimiter } from "../admission/rate-limiter.js";

/**
 * The cheap refusals of an inference request, run after authentication and before its body is
 * read or parsed: the client's request rate (RATE_LIMIT_RPM) and its cap on requests in flight
 * (MAX_STREAMS_PER_KEY). The in-flight place is released when the response closes, however it ends.
 */
export interface PreflightDeps {
  rateLimiter: RateLimiter;
  caps: ClientCaps;
  clock: Clock;
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
  ctx.res.once("close", () => lease.release());
}
