import assert from "node:assert/strict";

/**
 * A fetch for the openai client inside LangChain's ChatOpenAI (`configuration.fetch`) that keeps
 * each request's JSON body, then sends the request on with `next` (the real fetch by default).
 */
export function recordingFetch(bodies: Record<string, unknown>[], next: typeof fetch = fetch): typeof fetch {
  return async (input, init) => {
    if (typeof init?.body === "string") bodies.push(JSON.parse(init.body) as Record<string, unknown>);
    return next(input, init);
  };
}

/**
 * Asserts that the JSON schema a client sent for the tests' zod 4 `Person` schema kept its checks:
 * the ones a converter limited to types drops (@langchain/core 0.3.x read zod 4 schemas with its
 * bundled zod 3.25 and sent only `type`, `properties`, `required`).
 */
export function assertPersonChecksKept(schema: Record<string, unknown>): void {
  const p = (schema as { properties: Record<string, Record<string, any>> }).properties;
  const text = JSON.stringify(schema);
  assert.equal(p.name!.maxLength, 12, text);
  assert.deepEqual([p.age!.type, p.age!.minimum, p.age!.maximum], ["integer", 1, 120], text);
  assert.equal(p.visits!.exclusiveMinimum, 0, text);
  assert.deepEqual([p.born!.format, p.email!.format, p.id!.format], ["date", "email", "uuid"], text);
  assert.deepEqual([p.height!.minimum, p.height!.maximum], [0, 3], text);
  assert.equal(p.pets!.maxItems, 2, text);
  const tags = p.pets!.items.properties.tags;
  assert.deepEqual([tags.minItems, tags.maxItems, tags.items.maxLength], [1, 3, 6], text);
  assert.deepEqual(p.pets!.items.properties.kind.enum, ["cat", "dog", "bird"], text);
}
