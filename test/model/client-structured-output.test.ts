import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { z } from "zod";
import OpenAI from "openai";
import { zodResponseFormat } from "openai/helpers/zod";
import { generateObject, streamObject } from "ai";
import { createOpenAICompatible } from "@ai-sdk/openai-compatible";
import { ChatOpenAI } from "@langchain/openai";
import { waitForRoutable } from "../helpers/cluster.js";
import { STORIES_MODEL, missingModel, startCoordinatorProc, startWorkerProc, type Served } from "../helpers/processes.js";
import { schemaOracle } from "../helpers/schema-oracle.js";
import { Person } from "../helpers/person-schema.js";
import { assertPersonChecksKept, recordingFetch } from "../helpers/langchain-requests.js";

/**
 * Structured output through the client libraries JavaScript developers use, unmodified, against a
 * real coordinator and a stories260K worker: the AI SDK's generateObject/streamObject (through
 * @ai-sdk/openai-compatible with structured outputs on), LangChain's withStructuredOutput, and the
 * openai SDK's chat.completions.parse(zodResponseFormat(…)). The zod 4 schema uses what those
 * users write: .int() (zod writes ±9007199254740991), .min/.max, .positive(), z.iso.date(),
 * z.email(), z.uuid(), enums, nested objects and arrays; strings and arrays are bounded so that a
 * 260K-parameter model finishes within max_tokens. Each library parses the answer with the zod
 * schema itself, and Ajv checks the same answer against the JSON schema the server received.
 */
const skip = missingModel(STORIES_MODEL);
const MAX_TOKENS = 700;

type PersonT = z.infer<typeof Person>;
const PROMPT = "Tell me about Lily and her pets as JSON.";

describe("structured output with the client libraries", { skip }, () => {
  let coordinator: Served;
  let worker: Served;
  let baseURL: string;
  const valid = schemaOracle()(z.toJSONSchema(Person));

  before(async () => {
    coordinator = await startCoordinatorProc();
    worker = (await startWorkerProc(coordinator.url, { model: STORIES_MODEL, id: "w1", env: { PARALLEL: "2" }, args: ["--model-alias", "stories"] }))!;
    await waitForRoutable(coordinator.url, 1);
    baseURL = `${coordinator.url}/v1`;
  });
  after(async () => {
    await Promise.all([worker?.proc.stop(), coordinator?.proc.stop()]);
  });

  function check(p: PersonT): void {
    assert.ok(Person.safeParse(p).success, JSON.stringify(p));
    assert.ok(valid(p), `Ajv: ${JSON.stringify(p)}`);
  }

  it("the openai SDK's chat.completions.parse(zodResponseFormat(...)) returns a parsed object", async () => {
    const client = new OpenAI({ baseURL, apiKey: "not-needed", maxRetries: 0, timeout: 60_000 });
    for (const seed of [1, 2, 3]) {
      const r = await client.chat.completions.parse({
        model: "stories", messages: [{ role: "user", content: PROMPT }], response_format: zodResponseFormat(Person, "person"), max_tokens: MAX_TOKENS, seed,
      });
      const m = r.choices[0]!.message;
      assert.equal(r.choices[0]!.finish_reason, "stop", m.content ?? "");
      check(m.parsed!);
    }
  });

  it("the AI SDK's generateObject returns an object the zod schema accepts", async () => {
    const provider = createOpenAICompatible({ name: "local", baseURL, apiKey: "not-needed", supportsStructuredOutputs: true });
    for (const seed of [4, 5]) {
      const r = await generateObject({ model: provider.chatModel("stories"), schema: Person, prompt: PROMPT, maxOutputTokens: MAX_TOKENS, seed, maxRetries: 0 });
      assert.equal(r.finishReason, "stop");
      check(r.object);
    }
  });

  it("the AI SDK's streamObject streams partial objects and ends with one the zod schema accepts", async () => {
    const provider = createOpenAICompatible({ name: "local", baseURL, apiKey: "not-needed", supportsStructuredOutputs: true });
    const r = streamObject({ model: provider.chatModel("stories"), schema: Person, prompt: PROMPT, maxOutputTokens: MAX_TOKENS, seed: 6, maxRetries: 0 });
    let partials = 0;
    for await (const _ of r.partialObjectStream) partials++;
    assert.ok(partials > 1, `partial objects: ${partials}`);
    check(await r.object);
  });

  it("LangChain's withStructuredOutput(zodSchema) (json_schema, strict) sends the schema's checks and returns an object the zod schema accepts", async () => {
    // The zod 4 schema itself, as users write it: @langchain/core 1.x converts it with zod 4's own
    // JSON schema conversion (0.3.x converted it with a bundled zod 3.25 that kept only the types).
    const bodies: Record<string, unknown>[] = [];
    const chat = new ChatOpenAI({ model: "stories", apiKey: "not-needed", configuration: { baseURL, fetch: recordingFetch(bodies) }, maxTokens: MAX_TOKENS, maxRetries: 0 });
    const structured = chat.withStructuredOutput(Person, { method: "jsonSchema", strict: true, name: "person" });
    for (const _ of [1, 2]) {
      const p: PersonT = await structured.invoke(PROMPT);
      check(p);
    }
    assert.equal(bodies.length, 2);
    const rf = bodies[0]!.response_format as { type: string; json_schema: { name: string; strict: boolean; schema: Record<string, unknown> } };
    assert.deepEqual([rf.type, rf.json_schema.name, rf.json_schema.strict], ["json_schema", "person", true]);
    assertPersonChecksKept(rf.json_schema.schema);
  });
});
