import type { RouteContext } from "../common/http-server.js";
import { ServingError } from "../common/serving-error.js";
import { MAX_PRIORITY } from "../protocol/seed-api.js";

/**
 * A request's place in the admission queue: the body's `priority` when given, else the
 * `x-priority` header (for clients and gateways that cannot change bodies), else 0. Lower values
 * are served first, as vLLM's `priority`.
 */
export const PRIORITY_HEADER = "x-priority";

export function priorityOf(ctx: RouteContext, fromBody: number | undefined): number {
  if (fromBody !== undefined) return fromBody;
  const v = ctx.req.headers[PRIORITY_HEADER];
  if (v === undefined || v === "") return 0;
  const n = typeof v === "string" && /^[+-]?\d{1,7}$/.test(v.trim()) ? Number(v) : NaN;
  if (!Number.isSafeInteger(n) || Math.abs(n) > MAX_PRIORITY) {
    throw new ServingError("invalid_field", `header '${PRIORITY_HEADER}' must be an integer from ${-MAX_PRIORITY} to ${MAX_PRIORITY}`, {
      param: PRIORITY_HEADER,
    });
  }
  return n;
}
