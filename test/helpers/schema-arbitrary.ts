import fc from "fast-check";

/**
 * Random schemas from the strict-mode subset our compiler enforces: every type, enum, const, anyOf,
 * nested objects (required and optional members, additionalProperties false) and arrays with
 * minItems/maxItems, string lengths, patterns and formats, integer and number bounds, multipleOf,
 * and a recursive $ref. Sizes are bounded so that a tiny model can finish an output.
 */
// No `__proto__`: Ajv (the oracle) loses it from a schema's properties; json-schema-names.test.ts covers it.
const name = fc.constantFrom("a", "b", "id", "constructor", "toString", "n-1", "x y", 'q"');
const int = fc.integer({ min: -1000, max: 1000 });

const stringSchema = fc.oneof(
  fc.record({ type: fc.constant("string"), maxLength: fc.integer({ min: 0, max: 8 }) }),
  fc.record({ type: fc.constant("string"), minLength: fc.integer({ min: 0, max: 3 }), maxLength: fc.integer({ min: 3, max: 6 }) }),
  fc.record({ type: fc.constant("string"), pattern: fc.constantFrom("^[a-z]{1,5}$", "^\\d{2,4}-[A-F]$", "^(yes|no)$", "^a+b?$", "^[^\"\\\\]{0,3}$") }),
  fc.record({ type: fc.constant("string"), format: fc.constantFrom("date", "time", "date-time", "duration", "email", "hostname", "ipv4", "ipv6", "uuid") }),
  fc.record({ type: fc.constant("string"), enum: fc.uniqueArray(fc.string({ maxLength: 4 }), { minLength: 1, maxLength: 4 }) }),
);

const integerSchema = fc.oneof(
  fc.tuple(int, int).map(([a, b]) => ({ type: "integer", minimum: Math.min(a, b), maximum: Math.max(a, b) })),
  fc.tuple(int, int).filter(([a, b]) => Math.abs(a - b) > 2).map(([a, b]) => ({ type: "integer", exclusiveMinimum: Math.min(a, b), exclusiveMaximum: Math.max(a, b) })),
  fc.constant({ type: "integer", minimum: -9007199254740991, maximum: 9007199254740991 }),
  fc.constant({ type: "integer", exclusiveMinimum: 0, maximum: 9007199254740991 }),
  fc.record({ type: fc.constant("integer"), multipleOf: fc.integer({ min: 2, max: 12 }) }),
  fc.record({ type: fc.constant("integer"), multipleOf: fc.integer({ min: 2, max: 50 }), minimum: fc.constant(0), maximum: fc.constant(500) }),
);

const numberSchema = fc.oneof(
  fc.constant({ type: "number" }),
  fc.tuple(int, int).map(([a, b]) => ({ type: "number", minimum: Math.min(a, b), maximum: Math.max(a, b) })),
  fc.tuple(int, int).filter(([a, b]) => a !== b).map(([a, b]) => ({ type: "number", exclusiveMinimum: Math.min(a, b), exclusiveMaximum: Math.max(a, b) })),
  fc.constant({ type: "number", exclusiveMinimum: 0 }),
);

const leaf = fc.oneof(
  stringSchema,
  integerSchema,
  numberSchema,
  fc.constant({ type: "boolean" }),
  fc.constant({ type: "null" }),
  fc.constant({ type: ["string", "null"], maxLength: 4 }),
  fc.constant({ const: "fixed" }),
  fc.constant({ enum: [1, "two", null, true] }),
);

export const schemaArbitrary: fc.Arbitrary<Record<string, unknown>> = fc.letrec<{ node: Record<string, unknown> }>((tie) => ({
  node: fc.oneof(
    { maxDepth: 3, depthIdentifier: "schema" },
    leaf,
    fc
      .tuple(fc.uniqueArray(name, { minLength: 0, maxLength: 3 }), fc.array(tie("node"), { minLength: 3, maxLength: 3 }), fc.array(fc.boolean(), { minLength: 3, maxLength: 3 }))
      .map(([names, subs, req]) => ({
        type: "object",
        properties: Object.fromEntries(names.map((n, i) => [n, subs[i]!])),
        // Ajv reads an absent optional `constructor` through the prototype (a false failure): required.
        required: names.filter((n, i) => req[i] || n === "constructor" || n === "toString"),
        additionalProperties: false,
      })),
    fc.tuple(tie("node"), fc.integer({ min: 0, max: 2 }), fc.integer({ min: 0, max: 2 })).map(([items, min, extra]) => ({ type: "array", items, minItems: min, maxItems: min + extra })),
    fc.array(tie("node"), { minLength: 1, maxLength: 3 }).map((anyOf) => ({ anyOf })),
  ),
})).node;

/** A fixed recursive schema (a linked list through $defs), to mix with the random ones. */
export const RECURSIVE_SCHEMA = {
  $defs: { node: { type: "object", properties: { v: { type: "integer", minimum: 0, maximum: 9 }, next: { anyOf: [{ $ref: "#/$defs/node" }, { type: "null" }] } }, required: ["v", "next"], additionalProperties: false } },
  $ref: "#/$defs/node",
};

/** JSON.parse keeps `__proto__` as an own property, as a client's request body would. */
export function asRequestBody(schema: object): Record<string, unknown> {
  return JSON.parse(JSON.stringify(schema)) as Record<string, unknown>;
}
