import { ServingError } from "./serving-error.js";

/**
 * Small, strict readers for JSON request bodies. Each names the offending parameter in its error
 * so that clients (and OpenAI SDKs, through `param`) can tell what to fix.
 */
export type JsonObject = Record<string, unknown>;

export function parseJsonObject(text: string): JsonObject {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new ServingError("invalid_json", "request body is not valid JSON");
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new ServingError("invalid_request", "request body must be a JSON object");
  }
  return value as JsonObject;
}

export function requireString(o: JsonObject, key: string, opts: { nonEmpty?: boolean; maxLength?: number } = {}): string {
  const v = o[key];
  if (v === undefined || v === null) throw new ServingError("missing_field", `missing required field '${key}'`, { param: key });
  return checkString(v, key, opts);
}

export function optionalString(o: JsonObject, key: string, opts: { nonEmpty?: boolean; maxLength?: number } = {}): string | undefined {
  const v = o[key];
  if (v === undefined || v === null) return undefined;
  return checkString(v, key, opts);
}

function checkString(v: unknown, key: string, opts: { nonEmpty?: boolean; maxLength?: number }): string {
  if (typeof v !== "string") throw new ServingError("invalid_field", `'${key}' must be a string`, { param: key });
  if (opts.nonEmpty && v.length === 0) throw new ServingError("invalid_field", `'${key}' must not be empty`, { param: key });
  if (opts.maxLength !== undefined && v.length > opts.maxLength) {
    throw new ServingError("invalid_field", `'${key}' is longer than ${opts.maxLength} characters`, { param: key });
  }
  return v;
}

export function requireInteger(o: JsonObject, key: string, min: number, max: number): number {
  const v = o[key];
  if (v === undefined || v === null) throw new ServingError("missing_field", `missing required field '${key}'`, { param: key });
  return checkInteger(v, key, min, max);
}

export function optionalInteger(o: JsonObject, key: string, min: number, max: number): number | undefined {
  const v = o[key];
  if (v === undefined || v === null) return undefined;
  return checkInteger(v, key, min, max);
}

function checkInteger(v: unknown, key: string, min: number, max: number): number {
  if (typeof v !== "number" || !Number.isInteger(v)) throw new ServingError("invalid_field", `'${key}' must be an integer`, { param: key });
  if (v < min || v > max) throw new ServingError("invalid_field", `'${key}' must be between ${min} and ${max}`, { param: key });
  return v;
}

export function optionalNumber(o: JsonObject, key: string, min: number, max: number): number | undefined {
  const v = o[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== "number" || !Number.isFinite(v)) throw new ServingError("invalid_field", `'${key}' must be a number`, { param: key });
  if (v < min || v > max) throw new ServingError("invalid_field", `'${key}' must be between ${min} and ${max}`, { param: key });
  return v;
}

export function optionalBoolean(o: JsonObject, key: string): boolean | undefined {
  const v = o[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== "boolean") throw new ServingError("invalid_field", `'${key}' must be a boolean`, { param: key });
  return v;
}

const UUID_V4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/i;

/** Session ids are UUID v4 (made by the coordinator) or short opaque ids of safe characters. */
export function requireSessionId(o: JsonObject, key = "session_id"): string {
  const v = requireString(o, key, { nonEmpty: true, maxLength: 128 });
  if (!UUID_V4.test(v) && !/^[A-Za-z0-9._:-]{1,128}$/.test(v)) {
    throw new ServingError("invalid_field", `'${key}' must be a UUID or an id of letters, digits and . _ : -`, { param: key });
  }
  return v;
}

export function isUuidV4(s: string): boolean {
  return UUID_V4.test(s);
}
