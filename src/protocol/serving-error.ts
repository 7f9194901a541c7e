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
  /** The prompt (by its bytes, before tokenizing) or prompt + max_tokens exceed the context of every worker serving the model. */
  | "context_length_exceeded"
  | "unsupported_characters"
  | "invalid_grammar"
  | "grammar_dead_end"
  | "model_required"
  | "unknown_model"
  | "json_too_deep"
  // 401 / 403
  | "unauthorized"
  | "cluster_token_required"
  | "forbidden"
  // 404
  | "not_found"
  | "session_not_found"
  | "model_not_found"
  // 405
  | "method_not_allowed"
  // 409
  | "session_busy"
  | "worker_url_conflict"
  // 413
  | "body_too_large"
  /** The request's KV cache (prompt + max_tokens) exceeds every worker's per-session limit. */
  | "session_kv_limit_exceeded"
  // 415
  | "unsupported_media_type"
  // 499: the client closed its connection before the answer (telemetry only; nobody reads the body)
  | "client_closed"
  // 429
  | "rate_limited"
  | "queue_full"
  | "too_many_workers"
  | "too_many_streams"
  | "too_many_queued"
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
  /** Workers died handling this request (or an identical one, remembered for POISON_TTL_MS). */
  | "request_crashed_worker"
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
