import { repeat } from "./gbnf-rules.js";
import { anyValueRule } from "./json-primitives.js";
import { count, fail, type Schema, type SchemaContext } from "./schema-context.js";

/**
 * Arrays: `prefixItems` (one schema per leading position), `items` (the rest; false: none; missing:
 * any value), minItems/maxItems by bounded repetition. Prefix positions are filled first, up to
 * maxItems. Without maxItems the repetition is unbounded (the schema allows any length).
 */
export const ARRAY_KEYWORDS = ["items", "prefixItems", "minItems", "maxItems"] as const;

export function arrayGrammar(ctx: SchemaContext, s: Schema, pointer: string, depth: number): string {
  const min = count(ctx, s, "minItems", pointer) ?? 0;
  const max = count(ctx, s, "maxItems", pointer);
  if (max !== undefined && max < min) fail(ctx, `${pointer}/maxItems`, "has 'maxItems' below 'minItems'");
  const prefix = s.prefixItems ?? [];
  if (!Array.isArray(prefix)) fail(ctx, `${pointer}/prefixItems`, "has 'prefixItems' that are not a list");
  const fixed = prefix.slice(0, max ?? prefix.length).map((p, i) => ctx.compile(p, `${pointer}/prefixItems/${i}`, depth + 1));
  const restMin = Math.max(0, min - fixed.length);
  const restMax = max === undefined ? undefined : max - fixed.length;
  let rest: string | undefined;
  if (s.items === false) {
    if (restMin > 0) fail(ctx, `${pointer}/minItems`, "has 'minItems' above the prefixItems when 'items' is false");
  } else if (restMax !== 0) {
    rest = s.items === undefined ? anyValueRule(ctx.rules) : ctx.compile(s.items, `${pointer}/items`, depth + 1);
  }
  if (fixed.length > 0) {
    const more = rest === undefined ? "" : ` ${repeat(`("," ${rest})`, restMin, restMax)}`;
    return `"[" ${fixed.join(' "," ')}${more === ' ""' ? "" : more} "]"`;
  }
  if (rest === undefined) return '"[" "]"';
  // n items: one, then n − 1 after commas; none when the minimum allows it.
  const list = `${rest} ${repeat(`("," ${rest})`, Math.max(0, restMin - 1), restMax === undefined ? undefined : restMax - 1)}`.replace(/ ""$/, "");
  return restMin === 0 ? `"[" (${list})? "]"` : `"[" ${list} "]"`;
}
