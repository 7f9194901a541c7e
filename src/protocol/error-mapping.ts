import { ServingError, type ErrorCode } from "./serving-error.js";

/**
 * The single table from error code to HTTP status, and the two wire shapes: the seed's
 * `{error, reason, request_id}` and OpenAI's `{error: {message, type, param, code}}`.
 */
const STATUS: Record<ErrorCode, number> = {
  invalid_json: 400,
  invalid_request: 400,
  missing_field: 400,
  invalid_field: 400,
  prompt_too_long: 400,
  // The prompt (its byte length alone, checked before tokenizing) or prompt + max_tokens cannot fit the context.
  context_length_exceeded: 400,
  // Text the model's vocabulary cannot represent (no byte-fallback tokens).
  unsupported_characters: 400,
  // A grammar beyond the nesting, rule or size limits, or one llama.cpp cannot compile.
  invalid_grammar: 400,
  // The grammar and logit_bias together leave no token allowed.
  grammar_dead_end: 400,
  model_required: 400,
  unknown_model: 400,
  json_too_deep: 400,
  unauthorized: 401,
  cluster_token_required: 401,
  forbidden: 403,
  not_found: 404,
  session_not_found: 404,
  model_not_found: 404,
  method_not_allowed: 405,
  session_busy: 409,
  worker_url_conflict: 409,
  body_too_large: 413,
  session_kv_limit_exceeded: 413,
  unsupported_media_type: 415,
  client_closed: 499,
  rate_limited: 429,
  queue_full: 429,
  too_many_workers: 429,
  too_many_streams: 429,
  too_many_queued: 429,
  no_workers: 503,
  system_sessions_full: 503,
  system_kv_cache_full: 503,
  worker_sessions_full: 503,
  worker_kv_cache_full: 503,
  session_kv_limit: 503,
  draining: 503,
  queue_timeout: 503,
  overloaded: 503,
  worker_unreachable: 502,
  worker_failed: 502,
  worker_timeout: 504,
  request_crashed_worker: 502,
  internal: 500,
};

export function isErrorCode(s: string): s is ErrorCode {
  return Object.prototype.hasOwnProperty.call(STATUS, s);
}

/**
 * A code that names the client's own mistake: a 4xx other than 401/403 (those are about
 * credentials, which between coordinator and worker are the fleet's fault, never the client's).
 */
export function isClientErrorCode(code: string): code is ErrorCode {
  if (!isErrorCode(code)) return false;
  const status = httpStatusOf(code);
  return status >= 400 && status < 500 && status !== 401 && status !== 403;
}

export function httpStatusOf(code: ErrorCode): number {
  return STATUS[code];
}

/** Unknown throwables become `internal`; the original is kept as `cause` for the log. */
export function toServingError(err: unknown): ServingError {
  if (err instanceof ServingError) return err;
  return new ServingError("internal", "internal error", { cause: err });
}

export function seedErrorBody(err: ServingError, requestId: string): Record<string, unknown> {
  return { error: err.message, reason: err.code, request_id: requestId, ...(err.param ? { param: err.param } : {}), ...err.details };
}

function openAiType(status: number): string {
  if (status === 401) return "authentication_error";
  if (status === 403) return "permission_error";
  if (status === 404) return "not_found_error";
  if (status === 429) return "rate_limit_error";
  if (status >= 500) return status === 503 ? "overloaded_error" : "server_error";
  return "invalid_request_error";
}

export function openAiErrorBody(err: ServingError): Record<string, unknown> {
  const status = httpStatusOf(err.code);
  return { error: { message: err.message, type: openAiType(status), param: err.param ?? null, code: err.code } };
}

/** Headers that go with an error response (Retry-After on 429/503). */
export function errorHeaders(err: ServingError): Record<string, string> {
  const status = httpStatusOf(err.code);
  if (err.retryAfterS !== undefined) return { "retry-after": String(Math.max(1, Math.ceil(err.retryAfterS))) };
  if (status === 503 || status === 429) return { "retry-after": "1" };
  return {};
}
