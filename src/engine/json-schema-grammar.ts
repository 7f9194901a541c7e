import { getLlama, LlamaLogLevel, type Llama } from "node-llama-cpp";
import type { JsonObject } from "../protocol/validate.js";

/**
 * A JSON schema as a GBNF grammar, by node-llama-cpp's converter (the same one the node-llama-cpp
 * engine uses, so both engines constrain output alike). node-llama-cpp's binding is loaded on the
 * first schema only; it shares the llama.cpp libraries the native engine already loaded.
 */
let llama: Promise<Llama> | undefined;

export async function jsonSchemaToGbnf(schema: JsonObject): Promise<string> {
  llama ??= getLlama({ gpu: false, build: "never", maxThreads: 1, progressLogs: false, logLevel: LlamaLogLevel.error });
  const l = await llama;
  const grammar = Object.keys(schema).length === 0 ? await l.getGrammarFor("json") : await l.createGrammarForJsonSchema(schema as never);
  return grammar.grammar;
}
