import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { getLlama, LlamaCompletion, readGgufFileInfo, type LlamaModel } from "node-llama-cpp";
import { Ajv } from "ajv";
import { tightenJsonNumbers } from "../../src/engine/json-grammar.js";
import { nativeCallsGrammar, parseNativeToolCalls } from "../../src/protocol/tools/native-tool-calls.js";
import { ChatTemplate } from "../../src/engine/chat-template.js";
import { writeLlamaGguf } from "../../src/engine/gguf-writer.js";
import { HERMES_CONTROL_TOKENS, HERMES_TEMPLATE, LLAMA31_CONTROL_TOKENS, LLAMA31_TEMPLATE } from "../helpers/tool-templates.js";

/**
 * The model's own tool-call syntax, read from the GGUF's chat template through node-llama-cpp, and
 * tools described the template's way. Tiny GGUFs with random weights: only the template and the
 * tokenizer matter here.
 */
const TOOLS = [{ name: "get_weather", description: "The weather in a city", parameters: { type: "object", properties: { city: { type: "string" } }, required: ["city"] } }];

describe("tool-call syntax from the chat template", () => {
  let dir: string;
  const models: LlamaModel[] = [];
  const templateOf = async (name: string, chatTemplate: string, controlTokens: string[]): Promise<{ chat: ChatTemplate; detok: (t: number[]) => string; model: LlamaModel }> => {
    const path = join(dir, `${name}.gguf`);
    await writeLlamaGguf(path, {
      name, dim: 16, layers: 1, heads: 2, kvHeads: 2, ffn: 32, contextLength: 2048, vocabSize: 600,
      fileType: "f32", tiedEmbeddings: true, seed: 1, chatTemplate, controlTokens,
    });
    const llama = await getLlama({ gpu: false, logLevel: "error" as never });
    const model = await llama.loadModel({ modelPath: path });
    models.push(model);
    const chat = new ChatTemplate({ fileInfo: await readGgufFileInfo(path), tokenizer: model.tokenizer, bosString: model.tokens.bosString });
    // The tokenizer puts a word-start space after each control token (SentencePiece): dropped here.
    const detok = (t: number[]) => model.detokenize(t as never, true).replace(/(<\|[a-z_]+\|>) /g, "$1");
    return { chat, detok, model };
  };

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "tool-templates-"));
  });
  after(async () => {
    for (const m of models) await m.dispose();
    await rm(dir, { recursive: true, force: true });
  });

  it("a Hermes/Qwen template: calls in <tool_call> tags, tools listed in <tools> as the template writes them", async () => {
    const { chat, detok } = await templateOf("hermes", HERMES_TEMPLATE, HERMES_CONTROL_TOKENS);
    assert.deepEqual(chat.toolCallSyntax, { prefix: '<tool_call>\n{"name": "', paramsPrefix: '", "arguments": ', suffix: "}\n</tool_call>", between: "\n" });
    const prompt = detok(chat.render([{ role: "user", content: "Weather in Oslo?" }], TOOLS).tokens);
    assert.ok(prompt.includes(
      '<tools>\n{"type": "function", "function": {"name": "get_weather", "description": "The weather in a city", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}\n</tools>',
    ), prompt);
    assert.ok(prompt.endsWith("<|im_start|>user\nWeather in Oslo?<|im_end|>\n<|im_start|>assistant\n"), prompt);
    // Without tools the template renders no tool section.
    assert.ok(!detok(chat.render([{ role: "user", content: "Hi" }]).tokens).includes("<tools>"));
  });

  it("a tool history renders the template's way: the assistant's call in <tool_call> tags, its result in <tool_response>", async () => {
    const { chat, detok } = await templateOf("hermes-history", HERMES_TEMPLATE, HERMES_CONTROL_TOKENS);
    const rendered = chat.renderWithTools([
      { role: "user", content: "Weather in Oslo?" },
      { role: "assistant", content: "", tool_calls: [{ id: "call_1", name: "get_weather", arguments: '{"city":"Oslo"}' }] },
      { role: "tool", content: "21 degrees", tool_call_id: "call_1" },
    ], TOOLS);
    const prompt = detok(rendered!.tokens);
    assert.ok(prompt.includes('<|im_start|>assistant\n<tool_call>\n{"name": "get_weather", "arguments": {"city": "Oslo"}}\n</tool_call><|im_end|>'), prompt);
    // (The detokenizer writes a word-start space before the template's "\n" after the result.)
    assert.ok(/<tool_response>\n21 degrees ?\n<\/tool_response><\|im_end\|>/.test(prompt), JSON.stringify(prompt.slice(-120)));
    assert.ok(prompt.includes("<tools>"), prompt);
    assert.ok(prompt.endsWith("<|im_start|>assistant\n"), JSON.stringify(prompt.slice(-60)));
  });

  it("random weights under the grammar for that syntax write calls that parse and whose arguments validate", async () => {
    const { chat, model } = await templateOf("hermes-gen", HERMES_TEMPLATE, HERMES_CONTROL_TOKENS);
    const syntax = chat.toolCallSyntax!;
    const weather = { type: "object", properties: { city: { type: "string", enum: ["Oslo", "Lima"] }, days: { type: "integer", minimum: 1, maximum: 7 } }, required: ["city", "days"], additionalProperties: false };
    const add = { type: "object", properties: { a: { type: "number" }, b: { type: "number" } }, required: ["a", "b"], additionalProperties: false };
    const schemas: Record<string, object> = { get_weather: weather, add };
    const llama = model.llama;
    const tools = await Promise.all(Object.entries(schemas).map(async ([name, schema]) => ({
      name, argsGbnf: tightenJsonNumbers((await llama.createGrammarForJsonSchema(schema as never)).grammar),
    })));
    const grammar = await llama.createGrammar({ grammar: nativeCallsGrammar(syntax, tools, { text: false, parallel: false }) });
    const context = await model.createContext({ contextSize: 512, threads: 1 });
    try {
      const completion = new LlamaCompletion({ contextSequence: context.getSequence() });
      const ajv = new Ajv({ strict: false });
      let calls = 0;
      for (const seed of [1, 2]) {
        const text = await completion.generateCompletion("Weather?", { grammar, maxTokens: 120, temperature: 1, seed });
        const parsed = parseNativeToolCalls(text, syntax, new Set(Object.keys(schemas)), () => "0".repeat(24));
        assert.ok(parsed !== undefined, text);
        for (const c of parsed) {
          const validate = ajv.compile(schemas[c.function.name]!);
          assert.ok(validate(JSON.parse(c.function.arguments)), `${c.function.arguments}: ${ajv.errorsText(validate.errors)}`);
          calls++;
        }
      }
      assert.equal(calls, 2);
    } finally {
      await context.dispose();
    }
  });

  it("a Llama 3.1 template (bare JSON calls): node-llama-cpp finds no syntax, so the generic format stays", async () => {
    const { chat, detok } = await templateOf("llama31", LLAMA31_TEMPLATE, LLAMA31_CONTROL_TOKENS);
    assert.equal(chat.toolCallSyntax, undefined);
    // Tools are then not given to the template (the plain rendering describes them instead).
    const prompt = detok(chat.render([{ role: "user", content: "Weather in Oslo?" }], TOOLS).tokens);
    assert.ok(!prompt.includes("get_weather"), prompt);
    assert.equal(chat.renderWithTools([{ role: "user", content: "Weather in Oslo?" }], TOOLS), undefined);
  });
});
