/**
 * The one error type of the project. Every failure that reaches a client is a ServingError with a
 * code from this closed union; `error-mapping.ts` turns a code into an HTTP status and the wire
 * shapes of each API. Anything else that escapes a handler is a bug and becomes `internal` (500).
 */
export type ErrorCode =
  // 400: the request itself is wrong
  | "invalid_json"
  | "invalid_request"
  | "missing_field"
  | "invalid_field"
  | "prompt_too_long"
  | "context_length_exceeded"
  | "unsupported_characters"
  | "invalid_grammar"
  | "grammar_dead_end"
  | "model_required"
  | "unknown_model"
  // 401 / 403
  | "unauthorized"
  // 404
  | "not_found"
  | "session_not_found"
  | "model_not_found"
  // 405
  | "method_not_allowed"
  // 409
  | "session_busy"
  // 413
  | "body_too_large"
  // 415
  | "unsupported_media_type"
  // 429
  | "rate_limited"
  | "queue_full"
  // 503: capacity (reasons of the seed)
  | "no_workers"
  | "system_sessions_full"
  | "system_kv_cache_full"
  | "worker_sessions_full"
  | "worker_kv_cache_full"
  | "session_kv_limit"
  | "draining"
  | "queue_timeout"
  | "overloaded"
  // 502 / 504: upstream
  | "worker_unreachable"
  | "worker_failed"
  | "worker_timeout"
  // 500
  | "internal";

export class ServingError extends Error {
  readonly code: ErrorCode;
  /** Name of the offending request parameter, when one is to blame (OpenAI's `param`). */
  readonly param: string | undefined;
  /** Seconds a client should wait before retrying (429/503). */
  readonly retryAfterS: number | undefined;
  /** Extra machine-readable fields merged into the seed-shaped error body. */
  readonly details: Record<string, unknown> | undefined;

  constructor(
    code: ErrorCode,
    message: string,
    opts: { param?: string; retryAfterS?: number; details?: Record<string, unknown>; cause?: unknown } = {},
  ) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = "ServingError";
    this.code = code;
    this.param = opts.param;
    this.retryAfterS = opts.retryAfterS;
    this.details = opts.details;
  }
}

export function isServingError(err: unknown): err is ServingError {
  return err instanceof ServingError;
}
