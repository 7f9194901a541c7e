import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import OpenAI, { BadRequestError } from "openai";
import { generateText, stepCountIs, streamText, tool } from "ai";
import { createOpenAICompatible } from "@ai-sdk/openai-compatible";
import { ChatOpenAI } from "@langchain/openai";
import type { AIMessageChunk } from "@langchain/core/messages";
import { z } from "zod";
import { waitForRoutable } from "../helpers/cluster.js";
import { assertPersonChecksKept, recordingFetch } from "../helpers/langchain-requests.js";
import { Person } from "../helpers/person-schema.js";
import { STORIES_MODEL, missingModel, startCoordinatorProc, startWorkerProc, type Served } from "../helpers/processes.js";
import { weatherAndAdd } from "../helpers/weather-add-tools.js";

/**
 * Tools (function calling) through a real cluster (one stories260K worker), with the client
 * libraries people use: the openai SDK (required, named, auto, none; streamed calls reassembled by
 * the SDK), the AI SDK's agent loop, LangChain's bindTools. Every call's arguments are checked
 * against the tool's schema with Ajv.
 */
const skip = missingModel(STORIES_MODEL);
const MODEL = "stories260K";
const ADD = {
  type: "object",
  properties: { a: { type: "number" }, b: { type: "number" } },
  required: ["a", "b"],
  additionalProperties: false,
};
const { tools: TOOLS, assertValidCall } = weatherAndAdd(ADD);

describe("tools through the OpenAI API and the client libraries", { skip }, () => {
  let coordinator: Served;
  let worker: Served;
  let client: OpenAI;

  before(async () => {
    coordinator = await startCoordinatorProc();
    worker = await startWorkerProc(coordinator.url, { model: STORIES_MODEL, id: "w1" });
    await waitForRoutable(coordinator.url, 1);
    client = new OpenAI({ baseURL: `${coordinator.url}/v1`, apiKey: "not-needed", maxRetries: 0, timeout: 60_000 });
  });
  after(async () => {
    await Promise.all([worker?.proc.stop(), coordinator?.proc.stop()]);
  });

  const ask = [{ role: "user" as const, content: "What is the weather in Paris?" }];

  it("tool_choice required: finish_reason tool_calls, call_ ids, arguments that validate", async () => {
    for (const seed of [1, 2, 3]) {
      const r = await client.chat.completions.create({
        model: MODEL, messages: ask, tools: TOOLS, tool_choice: "required", parallel_tool_calls: false, seed, max_tokens: 200,
      });
      const choice = r.choices[0]!;
      assert.equal(choice.finish_reason, "tool_calls");
      assert.equal(choice.message.content, null);
      const calls = choice.message.tool_calls!;
      assert.equal(calls.length, 1);
      const call = calls[0]!;
      assert.equal(call.type, "function");
      assert.match(call.id, /^call_[0-9a-f]{24}$/);
      assert.ok(call.type === "function");
      assertValidCall(call.function.name, JSON.parse(call.function.arguments));
    }
  });

  it("logprobs with tools come from the grammar-constrained distribution (the sampler's fast path is off for them)", async () => {
    const r = await client.chat.completions.create({
      model: MODEL, messages: ask, tools: TOOLS, tool_choice: "required", parallel_tool_calls: false, seed: 7, max_tokens: 200,
      logprobs: true, top_logprobs: 5,
    });
    const choice = r.choices[0]!;
    assert.equal(choice.finish_reason, "tool_calls");
    const content = choice.logprobs!.content!;
    assert.equal(content.length, r.usage!.completion_tokens);
    // The first token must open the generic format's object: every alternative the grammar allows does.
    const first = content[0]!;
    assert.ok(first.top_logprobs.length > 0);
    for (const alt of first.top_logprobs) assert.ok('{"tool_calls":'.startsWith(alt.token.trimStart()) || alt.token.trimStart().startsWith("{"), JSON.stringify(alt));
    const mass = first.top_logprobs.reduce((m, a) => m + Math.exp(a.logprob), 0);
    assert.ok(mass <= 1 + 1e-4, `top_logprobs mass ${mass}`);
    for (const e of content) assert.ok(Number.isFinite(e.logprob) && e.logprob <= 0, JSON.stringify(e));
    // Greedy: each step's chosen token is that step's likeliest allowed one, with the same logprob
    // (entries read from an earlier step, or from the unconstrained pick, would not match).
    const greedy = await client.chat.completions.create({
      model: MODEL, messages: ask, tools: TOOLS, tool_choice: "required", parallel_tool_calls: false, temperature: 0, max_tokens: 200,
      logprobs: true, top_logprobs: 3,
    });
    const steps = greedy.choices[0]!.logprobs!.content!;
    assert.ok(steps.length > 5);
    steps.forEach((e, i) => {
      assert.equal(e.top_logprobs[0]?.token, e.token, `step ${i}: ${JSON.stringify(e)}`);
      assert.equal(e.top_logprobs[0]!.logprob, e.logprob, `step ${i}`);
    });
  });

  it("n = 2 with tools: each choice is its own calls, non-streamed and streamed (deltas name their choice)", async () => {
    const r = await client.chat.completions.create({
      model: MODEL, messages: ask, tools: TOOLS, tool_choice: "required", parallel_tool_calls: false, seed: 8, max_tokens: 200, n: 2,
    });
    assert.deepEqual(r.choices.map((c) => c.index), [0, 1]);
    for (const c of r.choices) {
      assert.equal(c.finish_reason, "tool_calls");
      const call = c.message.tool_calls![0]!;
      assert.ok(call.type === "function");
      assertValidCall(call.function.name, JSON.parse(call.function.arguments));
    }
    const stream = await client.chat.completions.create({
      model: MODEL, messages: ask, tools: TOOLS, tool_choice: "required", parallel_tool_calls: false, seed: 8, max_tokens: 200, n: 2, stream: true,
    });
    const args: string[] = ["", ""];
    const names: string[] = [];
    const finish: (string | null)[] = [null, null];
    for await (const chunk of stream) {
      for (const c of chunk.choices) {
        for (const d of c.delta.tool_calls ?? []) {
          if (d.function?.name !== undefined) names[c.index] = d.function.name;
          args[c.index] += d.function?.arguments ?? "";
        }
        finish[c.index] = c.finish_reason ?? finish[c.index]!;
      }
    }
    assert.deepEqual(finish, ["tool_calls", "tool_calls"]);
    for (const i of [0, 1]) assertValidCall(names[i]!, JSON.parse(args[i]!));
  });

  it("a named tool_choice calls that tool, with arguments that validate", async () => {
    for (const seed of [1, 2]) {
      const r = await client.chat.completions.create({
        model: MODEL, messages: ask, tools: TOOLS, tool_choice: { type: "function", function: { name: "add" } }, parallel_tool_calls: false, seed, max_tokens: 200,
      });
      const choice = r.choices[0]!;
      assert.equal(choice.finish_reason, "tool_calls");
      for (const call of choice.message.tool_calls!) {
        assert.ok(call.type === "function");
        assert.equal(call.function.name, "add");
        assertValidCall("add", JSON.parse(call.function.arguments));
      }
    }
  });

  it("a streamed call arrives as OpenAI streams it and the SDK reassembles it", async () => {
    const stream = await client.chat.completions.create({
      model: MODEL, messages: ask, tools: TOOLS, tool_choice: "required", parallel_tool_calls: false, seed: 5, max_tokens: 200, stream: true,
    });
    const deltas: OpenAI.ChatCompletionChunk.Choice.Delta.ToolCall[] = [];
    let finish: string | null = null;
    for await (const chunk of stream) {
      const c = chunk.choices[0];
      if (c === undefined) continue;
      deltas.push(...(c.delta.tool_calls ?? []));
      finish = c.finish_reason ?? finish;
    }
    assert.equal(finish, "tool_calls");
    assert.ok(deltas.length >= 2, "id+name first, then argument fragments");
    assert.match(deltas[0]!.id!, /^call_/);
    assert.ok(deltas[0]!.function?.name);
    assert.equal(deltas[0]!.function?.arguments, "");
    assert.ok(deltas.every((d) => d.index === 0));
    assert.ok(deltas.slice(1).every((d) => d.id === undefined && d.function?.name === undefined));
    const args = deltas.map((d) => d.function?.arguments ?? "").join("");
    assertValidCall(deltas[0]!.function!.name!, JSON.parse(args));

    // The SDK's own stream helper reassembles the same shape.
    const runner = client.chat.completions.stream({
      model: MODEL, messages: ask, tools: TOOLS, tool_choice: "required", parallel_tool_calls: false, seed: 5, max_tokens: 200,
    });
    const done = await runner.finalChatCompletion();
    const call = done.choices[0]!.message.tool_calls![0]!;
    assert.ok(call.type === "function");
    assert.equal(call.function.arguments, args);
    assertValidCall(call.function.name, JSON.parse(call.function.arguments));
  });

  it("tool_choice auto answers text or a call to an offered tool; none answers text", async () => {
    const seen = new Set<string>();
    for (const seed of [1, 2, 3, 4]) {
      const r = await client.chat.completions.create({ model: MODEL, messages: ask, tools: TOOLS, tool_choice: "auto", seed, max_tokens: 120 });
      const choice = r.choices[0]!;
      if (choice.finish_reason === "tool_calls") {
        seen.add("calls");
        for (const call of choice.message.tool_calls!) {
          assert.ok(call.type === "function");
          assert.ok(["get_weather", "add"].includes(call.function.name));
          assertValidCall(call.function.name, JSON.parse(call.function.arguments));
        }
      } else {
        seen.add("text");
        assert.equal(typeof choice.message.content, "string");
        assert.ok(!choice.message.content!.startsWith("{"));
      }
    }
    assert.ok(seen.size > 0);
    // A story-writing model with a '{' banned must answer text (token ids from the engine's vocabulary are not needed: none forbids calls).
    const none = await client.chat.completions.create({ model: MODEL, messages: ask, tools: TOOLS, tool_choice: "none", seed: 1, max_tokens: 16 });
    assert.equal(none.choices[0]!.finish_reason, "length");
    assert.equal(typeof none.choices[0]!.message.content, "string");
    assert.equal(none.choices[0]!.message.tool_calls, undefined);
  });

  it("tool_choice auto: calls' arguments validate against each tool's schema", async () => {
    // '{' (stories260K's byte token <0x7B>, id 126) pushed up makes the model start calls under auto;
    // the arguments then follow the grammar built from the tool's parameters, so they validate.
    let calls = 0;
    for (const seed of [1, 2, 3]) {
      const r = await client.chat.completions.create({
        model: MODEL, messages: ask, tools: TOOLS, tool_choice: "auto", parallel_tool_calls: false, seed, max_tokens: 200, logit_bias: { 126: 30 },
      });
      const choice = r.choices[0]!;
      assert.equal(choice.finish_reason, "tool_calls", JSON.stringify(choice.message));
      for (const call of choice.message.tool_calls!) {
        assert.ok(call.type === "function");
        assertValidCall(call.function.name, JSON.parse(call.function.arguments));
        calls++;
      }
    }
    assert.equal(calls, 3);
  });

  it("a history with a call and its tool result goes through the chat template", async () => {
    const r = await client.chat.completions.create({
      model: MODEL, tools: TOOLS, tool_choice: "none", seed: 1, max_tokens: 16,
      messages: [
        ...ask,
        { role: "assistant", content: null, tool_calls: [{ id: "call_1", type: "function", function: { name: "get_weather", arguments: '{"city":"Paris","unit":"c"}' } }] },
        { role: "tool", tool_call_id: "call_1", content: "sunny, 21 degrees" },
      ],
    });
    assert.equal(typeof r.choices[0]!.message.content, "string");
    assert.ok(r.usage!.prompt_tokens > 40, `the history was rendered (${r.usage!.prompt_tokens} prompt tokens)`);
  });

  it("a refusal of the tools' grammar by the worker names 'tools', not response_format", async () => {
    const huge = { type: "object", properties: { s: { type: "string", maxLength: 200_000 } }, required: ["s"] };
    const err = await client.chat.completions.create({
      model: MODEL, messages: ask, tool_choice: "required", max_tokens: 8,
      tools: [{ type: "function", function: { name: "f", parameters: huge } }],
    }).then(() => assert.fail("expected 400"), (e: unknown) => e);
    assert.ok(err instanceof BadRequestError, String(err));
    assert.equal(err.param, "tools");
  });

  it("an AI SDK generateText agent loop: a required call on the first step, its result, then text", async () => {
    const provider = createOpenAICompatible({ name: "engine", baseURL: `${coordinator.url}/v1`, apiKey: "not-needed" });
    const inputs: { name: string; input: unknown }[] = [];
    const result = await generateText({
      model: provider(MODEL),
      prompt: "What is the weather in Paris, and what is 2 plus 3?",
      maxOutputTokens: 200,
      seed: 3,
      maxRetries: 0,
      // stories260K, free to add calls, repeats them until max tokens; one call per answer keeps it short.
      providerOptions: { engine: { parallel_tool_calls: false } },
      tools: {
        get_weather: tool({
          description: "The weather in a city",
          inputSchema: z.object({ city: z.enum(["Paris", "Lima", "Oslo"]), unit: z.enum(["c", "f"]) }),
          execute: async (input) => {
            inputs.push({ name: "get_weather", input });
            return `sunny in ${input.city}`;
          },
        }),
        add: tool({
          description: "Adds two numbers",
          inputSchema: z.object({ a: z.number(), b: z.number() }),
          execute: async (input) => {
            inputs.push({ name: "add", input });
            return input.a + input.b;
          },
        }),
      },
      prepareStep: ({ stepNumber }) => ({ toolChoice: stepNumber === 0 ? "required" : "none" }),
      stopWhen: stepCountIs(3),
    });
    assert.equal(result.steps.length, 2);
    const first = result.steps[0]!;
    assert.equal(first.finishReason, "tool-calls");
    assert.ok(first.toolCalls.length >= 1);
    assert.equal(first.toolResults.length, first.toolCalls.length);
    assert.equal(inputs.length, first.toolCalls.length);
    for (const { name, input } of inputs) assertValidCall(name, input);
    assert.equal(result.steps[1]!.toolCalls.length, 0);
    assert.ok(result.text.length > 0);
  });

  it("the AI SDK's streamText reassembles a streamed call and runs the tool", async () => {
    const provider = createOpenAICompatible({ name: "engine", baseURL: `${coordinator.url}/v1`, apiKey: "not-needed" });
    const inputs: unknown[] = [];
    const result = streamText({
      model: provider(MODEL), prompt: "What is 2 plus 3?", maxOutputTokens: 200, seed: 4, maxRetries: 0,
      providerOptions: { engine: { parallel_tool_calls: false } },
      toolChoice: { type: "tool", toolName: "add" },
      tools: {
        add: tool({
          description: "Adds two numbers",
          inputSchema: z.object({ a: z.number(), b: z.number() }),
          execute: async (input) => {
            inputs.push(input);
            return input.a + input.b;
          },
        }),
      },
    });
    const calls = await result.toolCalls;
    assert.equal(await result.finishReason, "tool-calls");
    assert.equal(calls.length, 1);
    assert.equal(calls[0]!.toolName, "add");
    assert.equal(inputs.length, 1);
    assertValidCall("add", inputs[0]);
  });

  it("LangChain bindTools with tool_choice: required and a named tool", async () => {
    const chat = new ChatOpenAI({ model: MODEL, apiKey: "not-needed", configuration: { baseURL: `${coordinator.url}/v1` }, maxRetries: 0, maxTokens: 200 });
    const tools = TOOLS.map((t) => t as OpenAI.ChatCompletionFunctionTool);
    const required = await chat.bindTools(tools, { tool_choice: "required", parallel_tool_calls: false }).invoke("Weather in Oslo?");
    assert.equal(required.tool_calls!.length, 1);
    assertValidCall(required.tool_calls![0]!.name, required.tool_calls![0]!.args);
    const named = await chat.bindTools(tools, { tool_choice: "get_weather", parallel_tool_calls: false }).invoke("Weather in Oslo?");
    assert.equal(named.tool_calls!.length, 1);
    // Streamed: the chunks concatenate into the same kind of call.
    let merged: AIMessageChunk | undefined;
    for await (const chunk of await chat.bindTools(tools, { tool_choice: "add", parallel_tool_calls: false }).stream("Add 2 and 3")) {
      merged = merged === undefined ? chunk : merged.concat(chunk);
    }
    assert.equal(merged!.tool_calls!.length, 1);
    assert.equal(merged!.tool_calls![0]!.name, "add");
    assertValidCall("add", merged!.tool_calls![0]!.args);
    for (const c of named.tool_calls!) {
      assert.equal(c.name, "get_weather");
      assertValidCall("get_weather", c.args);
      assert.match(c.id!, /^call_/);
    }
  });

  it("LangChain bindTools with a zod schema passed directly: its checks reach the grammar and the call parses", async () => {
    const bodies: Record<string, unknown>[] = [];
    const chat = new ChatOpenAI({
      // The tool description in the prompt is about 1550 tokens of the 2048-token context.
      model: MODEL, apiKey: "not-needed", maxRetries: 0, maxTokens: 490,
      configuration: { baseURL: `${coordinator.url}/v1`, fetch: recordingFetch(bodies) },
    });
    const savePerson = { name: "save_person", description: "Saves a person", schema: Person };
    const reply = await chat.bindTools([savePerson], { tool_choice: "save_person", parallel_tool_calls: false }).invoke("Save Lily");
    const sent = (bodies[0]!.tools as { function: { parameters: Record<string, unknown> } }[])[0]!.function.parameters;
    assertPersonChecksKept(sent);
    assert.equal(reply.tool_calls!.length, 1, JSON.stringify(reply));
    assert.equal(reply.tool_calls![0]!.name, "save_person");
    // The arguments pass the zod schema itself, every check included (grammar from our compiler).
    const parsed = Person.safeParse(reply.tool_calls![0]!.args);
    assert.ok(parsed.success, JSON.stringify(reply.tool_calls![0]!.args));
  });
});
