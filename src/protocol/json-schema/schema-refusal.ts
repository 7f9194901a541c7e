import { ServingError } from "../serving-error.js";

/**
 * A schema construct that no grammar here enforces: a 400 `invalid_field` naming the keyword (or
 * construct) and its JSON pointer inside the schema, so that the caller can find and change it.
 */
export function refuse(param: string, pointer: string, why: string): never {
  const at = pointer === "" ? "the root" : pointer;
  throw new ServingError("invalid_field", `'${param}' ${why} at ${at}; it cannot be enforced during generation`, { param });
}

/** A JSON pointer with one more reference token (RFC 6901 escaping of `~` and `/`). */
export function pointerTo(base: string, token: string | number): string {
  return `${base}/${String(token).replace(/~/g, "~0").replace(/\//g, "~1")}`;
}
