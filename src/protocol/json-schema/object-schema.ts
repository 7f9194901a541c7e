import { literal } from "./gbnf-rules.js";
import { pointerTo } from "./schema-refusal.js";
import { count, fail, type Schema, type SchemaContext } from "./schema-context.js";

/**
 * Objects: properties in their declared order, every `required` one always, the others optional
 * (each at most once, in order, commas placed by construction). Properties not declared are never
 * produced, so `additionalProperties` (false, true or a schema) holds whatever it says. With
 * minProperties/maxProperties the optional ones needed to reach the minimum become mandatory and
 * the rest are dropped. A required name without a declared schema takes any JSON value.
 */
export const OBJECT_KEYWORDS = ["properties", "required", "additionalProperties", "minProperties", "maxProperties"] as const;

export function objectGrammar(ctx: SchemaContext, s: Schema, pointer: string, depth: number): string {
  const props = s.properties ?? {};
  if (typeof props !== "object" || props === null || Array.isArray(props)) fail(ctx, `${pointer}/properties`, "has 'properties' that are not an object");
  const required = s.required ?? [];
  if (!Array.isArray(required) || !required.every((r) => typeof r === "string")) fail(ctx, `${pointer}/required`, "has 'required' that is not a list of names");
  const ap = s.additionalProperties;
  if (ap !== undefined && typeof ap !== "boolean") ctx.compile(ap, `${pointer}/additionalProperties`, depth + 1); // checked, never produced
  const declared = Object.entries(props as Schema);
  const req = new Set(required as string[]);
  const mandatory: [string, unknown, string][] = [];
  const optional: [string, unknown, string][] = [];
  for (const [name, sub] of declared) {
    (req.has(name) ? mandatory : optional).push([name, sub, pointerTo(`${pointer}/properties`, name)]);
  }
  for (const name of req) {
    if (!Object.hasOwn(props as Schema, name)) mandatory.push([name, true, `${pointer}/required`]);
  }
  const minP = count(ctx, s, "minProperties", pointer);
  const maxP = count(ctx, s, "maxProperties", pointer);
  if (minP !== undefined || maxP !== undefined) {
    if (maxP !== undefined && mandatory.length > maxP) fail(ctx, `${pointer}/maxProperties`, "has 'maxProperties' below the number of required properties");
    const need = Math.max(0, (minP ?? 0) - mandatory.length);
    if (need > optional.length) fail(ctx, `${pointer}/minProperties`, "has 'minProperties' above the number of declared properties");
    mandatory.push(...optional.splice(0, optional.length).slice(0, need));
  }
  const member = ([name, sub, at]: [string, unknown, string]) => `${literal(JSON.stringify(name))} ":" ${ctx.compile(sub, at, depth + 1)}`;
  const head = mandatory.map(member);
  const tail = optional.map(member);
  if (tail.length === 0) return `"{" ${head.join(' "," ')} "}"`.replace('"{"  "}"', '"{" "}"');
  // Optional members o_i..o_n after something: ("," o_i)? ("," o_{i+1})? …; with nothing before,
  // R_i = o_i ("," o_{i+1})? … | R_{i+1}: each subset in order, one way only.
  const afterSome = tail.map((m) => `("," ${m})?`).join(" ");
  if (head.length > 0) return `"{" ${head.join(' "," ')} ${afterSome} "}"`;
  let rest: string | undefined;
  for (let i = tail.length - 1; i >= 0; i--) {
    const following = tail.slice(i + 1).map((m) => `("," ${m})?`).join(" ");
    const self = following === "" ? tail[i]! : `${tail[i]} ${following}`;
    rest = ctx.rules.add(rest === undefined ? self : `${self} | ${rest}`, "props");
  }
  return `"{" ${rest}? "}"`;
}
