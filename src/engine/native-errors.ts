import { ServingError, type ErrorCode } from "../protocol/serving-error.js";

/**
 * The native addon throws JavaScript Errors with a `code` saying whose fault a failure was
 * (native/addon.cpp): the request's (a 400 with the same code) or the engine's (500 `internal`,
 * the message kept for the log).
 */
const CLIENT_CODES: ReadonlySet<string> = new Set<ErrorCode>(["unsupported_characters", "invalid_grammar", "grammar_dead_end"]);

export function nativeErrorToServing(err: unknown, param?: string): ServingError {
  if (err instanceof ServingError) return err;
  const code = (err as { code?: unknown } | null)?.code;
  const message = err instanceof Error ? err.message : String(err);
  if (typeof code === "string" && CLIENT_CODES.has(code)) {
    return new ServingError(code as ErrorCode, message, { ...(param !== undefined ? { param } : {}), cause: err });
  }
  return new ServingError("internal", "the engine failed", { cause: err });
}

/** A generation the native loop ended because no token was allowed (DoneReason.DeadEnd). */
export function grammarDeadEnd(): ServingError {
  return new ServingError("grammar_dead_end", "no token is allowed: the grammar and logit_bias together exclude every token");
}
