import type { RouteContext } from "../../common/http-server.js";
import { ServingError } from "../../protocol/serving-error.js";
import { MAX_PRIORITY } from "../../protocol/limits.js";

/**
 * A request's place in the admission queue: the body's `priority` when given, else the
 * `x-priority` header (for clients and gateways that cannot change bodies), else 0. Lower values
 * are served first, as vLLM's `priority`. A negative value jumps ahead of every ordinary client, so
 * it is an operator's right (an admin key, or the local operator when no operator secret is set): 403.
 */
export const PRIORITY_HEADER = "x-priority";

export function priorityOf(ctx: RouteContext, fromBody: number | undefined): number {
  const p = fromBody ?? priorityHeader(ctx);
  if (p < 0 && !ctx.operator) {
    throw new ServingError("forbidden", "a negative priority needs an operator key (ADMIN_API_KEYS)", {
      param: fromBody !== undefined ? "priority" : PRIORITY_HEADER,
    });
  }
  return p;
}

function priorityHeader(ctx: RouteContext): number {
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
