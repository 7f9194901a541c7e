import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { ChatOpenAI } from "@langchain/openai";
import { Person } from "../helpers/person-schema.js";
import { assertPersonChecksKept, recordingFetch } from "../helpers/langchain-requests.js";

/**
 * What LangChain JS puts on the wire for a zod 4 schema passed as users write it, to
 * withStructuredOutput and to bindTools. The pinned @langchain/openai 1.5.x + @langchain/core 1.2.x
 * convert zod 4 schemas with zod 4 itself; @langchain/openai 0.6.x (+ core 0.3.x) converted them
 * with a bundled zod 3.25 that dropped every check, so the server constrained only the types and
 * the client's own zod parse then rejected the answer. No server: a fetch stub answers, so this
 * runs without a model (the end-to-end run is test/model/client-structured-output.test.ts).
 */
const ANSWER = {
  name: "Lily", age: 7, visits: 2, born: "2019-04-01", email: "lily@example.com", id: "8f14e45f-ceea-4a7b-9c6e-6f8e2a1b3c4d", height: 1.2,
  pets: [{ name: "Tom", kind: "cat", legs: 4, tags: ["grey"] }],
};

/** Answers every chat completion with `message`, as an OpenAI-compatible server would. */
function stubServer(message: Record<string, unknown>): typeof fetch {
  return async () =>
    new Response(JSON.stringify({ id: "c1", object: "chat.completion", created: 0, model: "stories", choices: [{ index: 0, finish_reason: "stop", message: { role: "assistant", ...message } }] }), {
      status: 200, headers: { "content-type": "application/json" },
    });
}

function chatWith(bodies: Record<string, unknown>[], message: Record<string, unknown>): ChatOpenAI {
  // The base URL is never dialled: the stub answers every request.
  return new ChatOpenAI({ model: "stories", apiKey: "not-needed", configuration: { baseURL: "http://127.0.0.1:9/v1", fetch: recordingFetch(bodies, stubServer(message)) }, maxRetries: 0 });
}

describe("LangChain JS with zod 4 schemas", () => {
  it("withStructuredOutput(zodSchema, json_schema strict) sends every check and parses the answer with the schema", async () => {
    const bodies: Record<string, unknown>[] = [];
    const structured = chatWith(bodies, { content: JSON.stringify(ANSWER) }).withStructuredOutput(Person, { method: "jsonSchema", strict: true, name: "person" });
    assert.deepEqual(await structured.invoke("Lily as JSON"), ANSWER);
    const rf = bodies[0]!.response_format as { type: string; json_schema: { name: string; strict: boolean; schema: Record<string, unknown> } };
    assert.deepEqual([rf.type, rf.json_schema.name, rf.json_schema.strict], ["json_schema", "person", true]);
    assertPersonChecksKept(rf.json_schema.schema);
  });

  it("withStructuredOutput(zodSchema) rejects an answer that breaks a check, as the zod schema does", async () => {
    const structured = chatWith([], { content: JSON.stringify({ ...ANSWER, age: 121 }) }).withStructuredOutput(Person, { method: "jsonSchema", strict: true, name: "person" });
    await assert.rejects(structured.invoke("Lily as JSON"));
  });

  it("bindTools([{ schema: zodSchema }]) sends every check as the tool's parameters and returns the tool call", async () => {
    const bodies: Record<string, unknown>[] = [];
    const toolCall = { id: "call_1", type: "function", function: { name: "person", arguments: JSON.stringify(ANSWER) } };
    const chat = chatWith(bodies, { content: null, tool_calls: [toolCall] });
    const msg = await chat.bindTools([{ name: "person", description: "Record a person and their pets", schema: Person }], { tool_choice: "person" }).invoke("Lily");
    const tools = bodies[0]!.tools as { type: string; function: { name: string; parameters: Record<string, unknown> } }[];
    assert.deepEqual([tools.length, tools[0]!.type, tools[0]!.function.name], [1, "function", "person"]);
    assertPersonChecksKept(tools[0]!.function.parameters);
    assert.deepEqual(msg.tool_calls?.map((c) => [c.name, c.args]), [["person", ANSWER]]);
  });
});
