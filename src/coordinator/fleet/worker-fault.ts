import { errors as undiciErrors } from "undici";
import { isClientErrorCode, isErrorCode } from "../../protocol/error-mapping.js";
import { ServingError } from "../../protocol/serving-error.js";

/**
 * How a call to a worker failed when the worker or the network is at fault (connect error, 5xx,
 * timeout) → another worker may succeed, and the worker is suspect; kind `died` is a connection
 * that closed or reset after the request was sent (the worker died handling it: the request is
 * suspect too); a 401/403 is kind `auth` (the worker refused the coordinator's token).
 */
export class WorkerFault extends Error {
  constructor(
    message: string,
    readonly kind: "connect" | "died" | "timeout" | "status" | "auth" | "protocol" | "aborted",
    readonly status?: number,
  ) {
    super(message);
    this.name = "WorkerFault";
  }
}

/** undici's codes for a connection that closed or reset under a request already sent. */
const DIED_CODES = new Set(["UND_ERR_SOCKET", "ECONNRESET", "EPIPE"]);

/**
 * A throwable of a call as a WorkerFault. `signal` is the call's (with its deadline); `clientSignal`,
 * when given, the client's alone: an abort of `signal` without it is the deadline's, a timeout.
 */
export function classify(err: unknown, signal: AbortSignal, clientSignal?: AbortSignal): Error {
  if (err instanceof ServingError || err instanceof WorkerFault) return err;
  if (clientSignal?.aborted) return new WorkerFault("request aborted", "aborted");
  if (signal.aborted) {
    return isTimeout(signal.reason) ? new WorkerFault("the worker did not answer in time", "timeout") : new WorkerFault("request aborted", "aborted");
  }
  if (err instanceof undiciErrors.HeadersTimeoutError || err instanceof undiciErrors.BodyTimeoutError || err instanceof undiciErrors.ConnectTimeoutError) {
    return new WorkerFault((err as Error).message, "timeout");
  }
  const code = (err as { code?: unknown })?.code;
  if (typeof code === "string" && DIED_CODES.has(code)) return new WorkerFault((err as Error).message, "died");
  return new WorkerFault((err as Error)?.message ?? String(err), "connect");
}

function isTimeout(reason: unknown): boolean {
  return reason instanceof DOMException && reason.name === "TimeoutError";
}

/** Machine-readable fields of a worker's 400 that reach the client as they are. */
const RELAYED_DETAILS = ["character", "offset", "min_tokens", "context_tokens"] as const;

/** A worker's error answer: 4xx and capacity 503s become ServingErrors; other statuses are faults. */
export function statusError(status: number, text: string): Error {
  let reason: string | undefined;
  let message = `worker answered ${status}`;
  let param: string | undefined;
  let details: Record<string, unknown> | undefined;
  try {
    const body = JSON.parse(text) as Record<string, unknown>;
    if (typeof body.reason === "string") reason = body.reason;
    if (typeof body.error === "string") message = body.error;
    if (typeof body.param === "string") param = body.param;
    if (body.context_size !== undefined) details = { prompt_tokens: body.prompt_tokens, context_size: body.context_size };
    // unsupported_characters names the character and its offset; context_length_exceeded its bound.
    for (const key of RELAYED_DETAILS) {
      if (typeof body[key] === "string" || typeof body[key] === "number") (details ??= {})[key] = body[key];
    }
  } catch {
    // not JSON: a fault below
  }
  // The worker refused the coordinator's credentials (CLUSTER_TOKEN mismatch): the fleet's fault, never the client's.
  if (status === 401 || status === 403) return new WorkerFault(`worker refused the coordinator's credentials (${status})`, "auth", status);
  if (status >= 400 && status < 500) {
    // Our worker names the request's fault with a known code and a message written for the client;
    // anything else (an unknown code, or one that is not the client's 4xx) is not passed on verbatim.
    const known = reason !== undefined && isClientErrorCode(reason) ? reason : undefined;
    return new ServingError(known ?? "invalid_request", known !== undefined ? message : `the worker refused the request (${status})`, {
      ...(param ? { param } : {}), ...(details ? { details } : {}),
    });
  }
  if (status === 503 && reason !== undefined && CAPACITY_CODES.has(reason) && isErrorCode(reason)) return new ServingError(reason, message);
  return new WorkerFault(message, "status", status);
}

/** A worker's 503 reasons that mean it is full (another worker may not be). */
const CAPACITY_CODES = new Set<string>(["worker_sessions_full", "worker_kv_cache_full", "session_kv_limit", "draining"]);

export function isCapacityError(err: unknown): err is ServingError {
  return err instanceof ServingError && CAPACITY_CODES.has(err.code);
}
