import { GbnfRules, literal } from "./gbnf-rules.js";
import { anyValueRule } from "./json-primitives.js";
import { ARRAY_KEYWORDS, arrayGrammar } from "./array-schema.js";
import { NUMBER_KEYWORDS, numberGrammar } from "./number-schema.js";
import { OBJECT_KEYWORDS, objectGrammar } from "./object-schema.js";
import { fail, MAX_DEPTH, type Definition, type Schema, type SchemaContext } from "./schema-context.js";
import { pointerTo } from "./schema-refusal.js";
import { STRING_KEYWORDS, stringGrammar } from "./string-schema.js";

/**
 * Our JSON Schema → GBNF compiler for the subset OpenAI documents for Structured Outputs (strict
 * mode), every keyword enforced: type (one or several), enum, const, anyOf, oneOf over disjoint
 * types, $defs/$ref (recursion included; `#` is the root), required, additionalProperties, and
 * the keyword families in string-schema.ts, number-schema.ts, object-schema.ts, array-schema.ts.
 * Annotations are ignored. Anything else is a 400 naming the keyword and its JSON pointer.
 * Every string the grammar accepts validates against the schema (Ajv is the oracle in the tests);
 * the grammar may accept fewer strings than the schema does (compact JSON, no exponents, bounded
 * formats and numbers), never more.
 */
const ANNOTATIONS = new Set(["title", "description", "default", "examples", "$schema", "$id", "$comment", "deprecated", "readOnly", "writeOnly", "$anchor"]);
const TYPES = ["string", "number", "integer", "boolean", "null", "object", "array"] as const;
type JsonType = (typeof TYPES)[number];
const FAMILY: Record<string, readonly string[]> = {
  string: STRING_KEYWORDS,
  number: NUMBER_KEYWORDS,
  object: OBJECT_KEYWORDS,
  array: ARRAY_KEYWORDS,
};
const KNOWN = new Set<string>(["type", "enum", "const", "anyOf", "oneOf", "$ref", "$defs", ...STRING_KEYWORDS, ...NUMBER_KEYWORDS, ...OBJECT_KEYWORDS, ...ARRAY_KEYWORDS]);

export function schemaToGbnf(schema: unknown, param: string): string {
  const rules = new GbnfRules();
  return rules.toString(compileInto(rules, schema, param));
}

/**
 * A schema's rules for embedding in a larger grammar (several tools' arguments in one call
 * grammar): every rule name starts with `namespace` (letters, digits, '-'), `root` names the rule
 * of the whole value, and no `root ::=` line is written.
 */
export function schemaToGbnfRules(schema: unknown, param: string, namespace: string): { root: string; rules: string } {
  if (!/^[a-zA-Z][a-zA-Z0-9-]*$/.test(namespace)) throw new RangeError(`bad GBNF rule namespace '${namespace}'`);
  const rules = new GbnfRules(namespace);
  const root = compileInto(rules, schema, param);
  return { root, rules: rules.definitions() };
}

function compileInto(rules: GbnfRules, schema: unknown, param: string): string {
  const defs = new Map<string, Definition>();
  const ctx: SchemaContext = { rules, param, defs, compile: (node, pointer, depth) => compile(ctx, node, pointer, depth) };
  const rootRule = rules.reserve("schema");
  defs.set("#", { schema, pointer: "", rule: rootRule });
  collectDefs(ctx, schema, "");
  rules.define(rootRule, body(ctx, schema, "", 0));
  return rootRule;
}

/** `$defs` anywhere in the schema are collected first; a `$ref` names one by `#/$defs/<name>`. */
function collectDefs(ctx: SchemaContext, node: unknown, pointer: string): void {
  if (typeof node !== "object" || node === null || Array.isArray(node)) return;
  const defs = (node as Schema).$defs;
  if (defs === undefined) return;
  if (typeof defs !== "object" || defs === null || Array.isArray(defs)) fail(ctx, `${pointer}/$defs`, "has '$defs' that are not an object");
  for (const [name, sub] of Object.entries(defs)) {
    const at = pointerTo(`${pointer}/$defs`, name);
    if (!ctx.defs.has(name)) ctx.defs.set(name, { schema: sub, pointer: at });
    collectDefs(ctx, sub, at);
  }
}

function compile(ctx: SchemaContext, node: unknown, pointer: string, depth: number): string {
  const g = body(ctx, node, pointer, depth);
  return /^[a-zA-Z0-9-]*[a-z][0-9]+$/.test(g) && !g.includes(" ") ? g : ctx.rules.add(g);
}

function body(ctx: SchemaContext, node: unknown, pointer: string, depth: number): string {
  if (depth > MAX_DEPTH) fail(ctx, pointer, `nests deeper than ${MAX_DEPTH} levels`);
  if (node === true) return anyValueRule(ctx.rules);
  if (typeof node !== "object" || node === null || Array.isArray(node)) fail(ctx, pointer, "has a schema that is not an object");
  const s = node as Schema;
  const keys = Object.keys(s).filter((k) => !ANNOTATIONS.has(k));
  for (const k of keys) if (!KNOWN.has(k)) fail(ctx, pointerTo(pointer, k), `uses '${k}'`);
  const constraints = keys.filter((k) => k !== "$defs");
  if (s.$ref !== undefined) {
    alone(ctx, constraints, "$ref", pointer);
    return ref(ctx, s.$ref, `${pointer}/$ref`);
  }
  if (s.anyOf !== undefined || s.oneOf !== undefined) {
    const k = s.anyOf !== undefined ? "anyOf" : "oneOf";
    alone(ctx, constraints, k, pointer);
    const branches = s[k];
    if (!Array.isArray(branches) || branches.length === 0) fail(ctx, `${pointer}/${k}`, `has an empty or invalid '${k}'`);
    if (k === "oneOf") disjointTypes(ctx, branches, `${pointer}/oneOf`);
    return branches.map((b, i) => ctx.compile(b, `${pointer}/${k}/${i}`, depth + 1)).join(" | ");
  }
  const types = readTypes(ctx, s, pointer);
  if (s.enum !== undefined || s.const !== undefined) return enumGrammar(ctx, s, constraints, types, pointer);
  const alts = types.map((t) => typeGrammar(ctx, t, s, pointer, depth));
  return alts.length === 1 ? alts[0]! : alts.map((a) => `(${a})`).join(" | ");
}

/** `$ref`, anyOf and oneOf take no sibling constraints here (their intersection is not built). */
function alone(ctx: SchemaContext, constraints: string[], key: string, pointer: string): void {
  const other = constraints.find((k) => k !== key);
  if (other !== undefined) fail(ctx, pointerTo(pointer, other), `combines '${key}' with '${other}'`);
}

function ref(ctx: SchemaContext, target: unknown, pointer: string): string {
  if (typeof target !== "string") fail(ctx, pointer, "has a $ref that is not a string");
  let name: string;
  if (target === "#") name = "#";
  else if (/^#\/\$defs\/[^/]+$/.test(target)) name = target.slice("#/$defs/".length).replace(/~1/g, "/").replace(/~0/g, "~");
  else return fail(ctx, pointer, `has a $ref '${target}' that is not '#' or '#/$defs/<name>'`);
  const def = ctx.defs.get(name);
  if (def === undefined) fail(ctx, pointer, `has a $ref to '${name}', which no $defs defines`);
  if (def.rule === undefined) {
    // Named before compiling, so that a definition may refer to itself.
    def.rule = ctx.rules.reserve("def");
    ctx.rules.define(def.rule, body(ctx, def.schema, def.pointer, 1));
  }
  return def.rule;
}

function readTypes(ctx: SchemaContext, s: Schema, pointer: string): JsonType[] {
  if (s.type === undefined) {
    // No type: the kind its keywords describe, else any JSON value.
    for (const [t, family] of Object.entries(FAMILY)) if (family.some((k) => s[k] !== undefined)) return [t as JsonType];
    return s.enum !== undefined || s.const !== undefined ? [...TYPES] : [];
  }
  const list = Array.isArray(s.type) ? s.type : [s.type];
  if (list.length === 0 || !list.every((t) => (TYPES as readonly unknown[]).includes(t))) fail(ctx, `${pointer}/type`, "has an unknown type");
  return [...new Set(list as JsonType[])];
}

function typeGrammar(ctx: SchemaContext, t: JsonType | undefined, s: Schema, pointer: string, depth: number): string {
  switch (t) {
    case "string": return stringGrammar(ctx, s, pointer);
    case "number": return numberGrammar(ctx, s, pointer, false);
    case "integer": return numberGrammar(ctx, s, pointer, true);
    case "boolean": return '"true" | "false"';
    case "null": return '"null"';
    case "object": return objectGrammar(ctx, s, pointer, depth);
    case "array": return arrayGrammar(ctx, s, pointer, depth);
    default: return anyValueRule(ctx.rules);
  }
}

/** enum/const: the listed values of an allowed type, each as its compact JSON text. */
function enumGrammar(ctx: SchemaContext, s: Schema, constraints: string[], types: JsonType[], pointer: string): string {
  const other = constraints.find((k) => k !== "enum" && k !== "const" && k !== "type");
  if (other !== undefined) fail(ctx, pointerTo(pointer, other), `combines 'enum'/'const' with '${other}'`);
  if (s.enum !== undefined && (!Array.isArray(s.enum) || s.enum.length === 0)) fail(ctx, `${pointer}/enum`, "has an empty or invalid 'enum'");
  let values: unknown[] = s.enum !== undefined ? (s.enum as unknown[]) : [s.const];
  if (s.const !== undefined) values = values.filter((v) => JSON.stringify(v) === JSON.stringify(s.const));
  const kept = values.filter((v) => types.length === 0 || types.some((t) => typeOf(v, t)));
  if (kept.length === 0) fail(ctx, pointer, "has no enum/const value of its type");
  return [...new Set(kept.map((v) => literal(JSON.stringify(v))))].join(" | ");
}

function typeOf(v: unknown, t: JsonType): boolean {
  switch (t) {
    case "null": return v === null;
    case "boolean": return typeof v === "boolean";
    case "string": return typeof v === "string";
    case "number": return typeof v === "number";
    case "integer": return Number.isInteger(v);
    case "array": return Array.isArray(v);
    case "object": return typeof v === "object" && v !== null && !Array.isArray(v);
  }
}

/** oneOf is an alternation only where no value can match two branches: explicit, disjoint types. */
function disjointTypes(ctx: SchemaContext, branches: unknown[], pointer: string): void {
  const seen = new Set<string>();
  branches.forEach((b, i) => {
    const t = typeof b === "object" && b !== null ? (b as Schema).type : undefined;
    const list = (Array.isArray(t) ? t : [t]).map((x) => (x === "integer" ? "number" : x));
    if (t === undefined || list.some((x) => typeof x !== "string" || seen.has(x))) fail(ctx, `${pointer}/${i}`, "has 'oneOf' branches whose types may overlap (use anyOf)");
    for (const x of list) seen.add(x as string);
  });
}
