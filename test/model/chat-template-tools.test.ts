import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { getLlama, readGgufFileInfo, type LlamaModel } from "node-llama-cpp";
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
  const templateOf = async (name: string, chatTemplate: string, controlTokens: string[]): Promise<{ chat: ChatTemplate; detok: (t: number[]) => string }> => {
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
    return { chat, detok };
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

  it("a Llama 3.1 template (bare JSON calls): node-llama-cpp finds no syntax, so the generic format stays", async () => {
    const { chat, detok } = await templateOf("llama31", LLAMA31_TEMPLATE, LLAMA31_CONTROL_TOKENS);
    assert.equal(chat.toolCallSyntax, undefined);
    // Tools are then not given to the template (the plain rendering describes them instead).
    const prompt = detok(chat.render([{ role: "user", content: "Weather in Oslo?" }], TOOLS).tokens);
    assert.ok(!prompt.includes("get_weather"), prompt);
  });
});
