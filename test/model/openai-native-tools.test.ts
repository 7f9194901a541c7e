import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import OpenAI from "openai";
import { buildVocab, writeLlamaGguf, type LlamaSpec } from "../../src/engine/gguf-writer.js";
import { waitForRoutable } from "../helpers/cluster.js";
import { STORIES_MODEL, missingModel, startCoordinatorProc, startWorkerProc, type Served } from "../helpers/processes.js";
import { HERMES_CONTROL_TOKENS, HERMES_TEMPLATE } from "../helpers/tool-templates.js";
import { weatherAndAdd } from "../helpers/weather-add-tools.js";

/**
 * Tools in the model's own format, through a real cluster and the openai SDK: one worker serves a
 * tiny project-written GGUF (random weights) whose chat template is Hermes / Qwen 2.5 style (calls
 * in `<tool_call>` tags), another stories260K (no tool syntax: the generic JSON format). The worker
 * picks the format and renders the tools; the coordinator parses the format the prefill names.
 * What the clients see is the same OpenAI shape either way.
 */
const skip = missingModel(STORIES_MODEL);
const HERMES_SPEC: LlamaSpec = {
  name: "hermes-tiny", dim: 16, layers: 1, heads: 2, kvHeads: 2, ffn: 32, contextLength: 2048, vocabSize: 600,
  fileType: "f32", tiedEmbeddings: true, seed: 3, chatTemplate: HERMES_TEMPLATE, controlTokens: HERMES_CONTROL_TOKENS,
};
const ADD = {
  type: "object",
  properties: { a: { type: "integer", minimum: 0, maximum: 99 }, b: { type: "integer", minimum: 0, maximum: 99 } },
  required: ["a", "b"],
  additionalProperties: false,
};
const { tools: TOOLS, assertValidCall: assertValidArgs } = weatherAndAdd(ADD);

function assertValidCall(call: OpenAI.ChatCompletionMessageToolCall): void {
  assert.ok(call.type === "function");
  assert.match(call.id, /^call_[0-9a-f]{24}$/);
  assertValidArgs(call.function.name, JSON.parse(call.function.arguments));
}

/**
 * Every token of the Hermes model whose text starts with '<' (a call's first character), biased
 * up: the byte token <0x3C> (this vocabulary has no '<' piece) and any piece starting with '<'.
 */
function callStartBias(): Record<string, number> {
  const { tokens, types } = buildVocab(HERMES_SPEC);
  const bias: Record<string, number> = {};
  tokens.forEach((t, i) => {
    const normal = types[i] === 1 && t.replace(/^\u2581/, "").startsWith("<");
    if (normal || t === "<0x3C>") bias[String(i)] = 100;
  });
  return bias;
}

describe("tools in the model's own format (Hermes template) and the generic one (stories260K)", { skip }, () => {
  let dir: string;
  let coordinator: Served;
  const workers: Served[] = [];
  let client: OpenAI;
  let hermes: string;
  let stories: string;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "native-tools-"));
    const path = join(dir, "hermes-tiny.gguf");
    await writeLlamaGguf(path, HERMES_SPEC);
    coordinator = await startCoordinatorProc();
    workers.push(await startWorkerProc(coordinator.url, { model: path, id: "wh" }));
    workers.push(await startWorkerProc(coordinator.url, { model: STORIES_MODEL, id: "ws" }));
    await waitForRoutable(coordinator.url, 2);
    client = new OpenAI({ baseURL: `${coordinator.url}/v1`, apiKey: "not-needed", maxRetries: 0, timeout: 60_000 });
    const ids = (await client.models.list()).data.map((m) => m.id);
    hermes = ids.find((id) => id.includes("hermes"))!;
    stories = ids.find((id) => id.includes("stories"))!;
    assert.ok(hermes !== undefined && stories !== undefined, ids.join(","));
  });
  after(async () => {
    await Promise.all([...workers.map((w) => w.proc.stop()), coordinator?.proc.stop()]);
    await rm(dir, { recursive: true, force: true });
  });

  const ask = [{ role: "user" as const, content: "What is the weather in Paris?" }];

  it("tool_choice required: calls in <tool_call> syntax come back as OpenAI tool_calls whose arguments validate", async () => {
    for (const seed of [1, 2, 3]) {
      const r = await client.chat.completions.create({
        model: hermes, messages: ask, tools: TOOLS, tool_choice: "required", parallel_tool_calls: false, seed, max_tokens: 120,
      });
      const choice = r.choices[0]!;
      assert.equal(choice.finish_reason, "tool_calls", JSON.stringify(choice));
      assert.equal(choice.message.content, null);
      assert.equal(choice.message.tool_calls!.length, 1);
      assertValidCall(choice.message.tool_calls![0]!);
    }
  });

  it("tool_choice auto with the call's first character forced by logit_bias: a call; without: text", async () => {
    const bias = callStartBias();
    assert.ok(Object.keys(bias).length > 0);
    const forced = await client.chat.completions.create({
      model: hermes, messages: ask, tools: TOOLS, tool_choice: "auto", parallel_tool_calls: false, seed: 4, max_tokens: 120, logit_bias: bias,
    });
    assert.equal(forced.choices[0]!.finish_reason, "tool_calls", JSON.stringify(forced.choices[0]));
    assertValidCall(forced.choices[0]!.message.tool_calls![0]!);
    // The opposite: every '<' token banned, so the answer is text (it may not start like a call).
    const banned = Object.fromEntries(Object.keys(bias).map((k) => [k, -100]));
    const text = await client.chat.completions.create({
      model: hermes, messages: ask, tools: TOOLS, tool_choice: "auto", seed: 4, max_tokens: 20, logit_bias: banned,
    });
    assert.equal(text.choices[0]!.message.tool_calls, undefined);
    assert.equal(typeof text.choices[0]!.message.content, "string");
  });

  it("a named tool, streamed: the SDK reassembles the call from deltas", async () => {
    const stream = await client.chat.completions.create({
      model: hermes, messages: ask, tools: TOOLS, tool_choice: { type: "function", function: { name: "add" } }, parallel_tool_calls: false,
      seed: 5, max_tokens: 120, stream: true,
    });
    const deltas: OpenAI.ChatCompletionChunk.Choice.Delta.ToolCall[] = [];
    let finish: string | null = null;
    let content = "";
    for await (const chunk of stream) {
      const c = chunk.choices[0];
      if (c === undefined) continue;
      deltas.push(...(c.delta.tool_calls ?? []));
      content += c.delta.content ?? "";
      finish = c.finish_reason ?? finish;
    }
    assert.equal(finish, "tool_calls");
    assert.equal(content, "");
    const head = deltas[0]!;
    assert.equal(head.function!.name, "add");
    const args = deltas.map((d) => d.function?.arguments ?? "").join("");
    assertValidCall({ id: head.id!, type: "function", function: { name: "add", arguments: args } });
    // The head (id, name) comes first and the arguments after it; how many pieces they come in depends on
    // how many tokens the relay gathers per write (all of them on a loaded machine), so the split into
    // fragments is checked exactly by the stream parser's unit tests, not here.
    assert.ok(deltas.length >= 2, "the arguments follow the call's head");
    assert.equal(head.function!.arguments ?? "", "", "the head carries no arguments yet");
  });

  it("a tool history (assistant calls, tool results) renders through the template and the next answer is parsed", async () => {
    const messages: OpenAI.ChatCompletionMessageParam[] = [
      ...ask,
      { role: "assistant", content: null, tool_calls: [{ id: "call_1", type: "function", function: { name: "get_weather", arguments: '{"city":"Paris","unit":"c"}' } }] },
      { role: "tool", tool_call_id: "call_1", content: "21 degrees" },
    ];
    const r = await client.chat.completions.create({
      model: hermes, messages, tools: TOOLS, tool_choice: "required", parallel_tool_calls: false, seed: 6, max_tokens: 120,
    });
    assert.equal(r.choices[0]!.finish_reason, "tool_calls");
    assertValidCall(r.choices[0]!.message.tool_calls![0]!);
  });

  it("stories260K has no tool-call syntax: the same requests are served in the generic format", async () => {
    const r = await client.chat.completions.create({
      model: stories, messages: ask, tools: TOOLS, tool_choice: "required", parallel_tool_calls: false, seed: 1, max_tokens: 200,
    });
    assert.equal(r.choices[0]!.finish_reason, "tool_calls");
    assertValidCall(r.choices[0]!.message.tool_calls![0]!);
  });

  it("each worker's prefill answer names the format: the Hermes syntax, or none (generic)", async () => {
    const tools = { tools: [{ name: "add", parameters: ADD }], choice: "required", parallel: false, history: [{ role: "user", content: "Add 2 and 3" }] };
    const syntaxOf = async (w: Served, id: string): Promise<unknown> => {
      const res = await fetch(`${w.url}/worker/prefill`, {
        method: "POST", headers: { "content-type": "application/json" },
        body: JSON.stringify({ session_id: id, messages: [{ role: "user", content: "Add 2 and 3" }], max_tokens: 8, tools }),
      });
      const body = (await res.json()) as { tool_syntax?: unknown };
      assert.equal(res.status, 200, JSON.stringify(body));
      await fetch(`${w.url}/worker/cancel`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ session_id: id }) });
      return body.tool_syntax;
    };
    assert.deepEqual(await syntaxOf(workers[0]!, "fmt-hermes"), { prefix: '<tool_call>\n{"name": "', paramsPrefix: '", "arguments": ', suffix: "}\n</tool_call>", between: "\n" });
    assert.equal(await syntaxOf(workers[1]!, "fmt-stories"), undefined);
  });
});
