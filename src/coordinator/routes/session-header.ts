import type { RouteContext } from "../../common/http-server.js";
import { ServingError } from "../../protocol/serving-error.js";

/**
 * `x-session-id`: the client's name for a conversation. Turns that carry the same id go to the
 * worker holding the conversation's KV cache, which keeps it between turns (README: Sessions).
 */
export const SESSION_HEADER = "x-session-id";

const SESSION_ID_RE = /^[A-Za-z0-9._:-]{1,128}$/;

export function conversationIdOf(ctx: RouteContext): string | undefined {
  const v = ctx.req.headers[SESSION_HEADER];
  if (v === undefined || v === "") return undefined;
  if (typeof v !== "string" || !SESSION_ID_RE.test(v)) {
    throw new ServingError("invalid_field", `header '${SESSION_HEADER}' must be 1 to 128 letters, digits or . _ : -`, { param: SESSION_HEADER });
  }
  return v;
}
