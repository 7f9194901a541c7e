#!/usr/bin/env node
// The reference for the worker-efficiency benchmark: node-llama-cpp driven directly, no HTTP, the
// way src/engine/llama-engine.ts drives it (one context, one sequence per stream, greedy
// evaluation), N streams at once under Promise.all.
// Usage: node scripts/bench/direct-llama.mjs '{"model":PATH,"threads":1,"contextSize":1024,"prompts":[...],"maxTokens":128}'
// Prints {"tokens": generated tokens, "wallMs": first start to last end, "perStream": [...]}.
import { getLlama, LlamaLogLevel } from "node-llama-cpp";

const o = JSON.parse(process.argv[2]);
const llama = await getLlama({ gpu: false, maxThreads: o.threads, build: "never", logLevel: LlamaLogLevel.error, progressLogs: false });
const model = await llama.loadModel({ modelPath: o.model, gpuLayers: 0 });
const context = await model.createContext({
  contextSize: o.contextSize, sequences: o.prompts.length, threads: o.threads, batchSize: Math.min(512, o.contextSize), failedCreationRemedy: false,
});
const bos = model.tokens.bos;
const streams = o.prompts.map((prompt) => {
  const tokens = model.tokenize(prompt, false);
  return { seq: context.getSequence(), input: bos !== null && model.tokens.shouldPrependBosToken ? [bos, ...tokens] : tokens };
});
const t0 = performance.now();
const perStream = await Promise.all(streams.map(async ({ seq, input }) => {
  // Like the worker: the prompt but its last token first, then generation from the last one.
  await seq.evaluateWithoutGeneratingNewTokens(input.slice(0, -1));
  let n = 0;
  for await (const t of seq.evaluate(input.slice(-1), { temperature: 0 })) {
    if (model.isEogToken(t) || t === bos) break;
    if (++n >= o.maxTokens) break;
  }
  return n;
}));
const wallMs = performance.now() - t0;
console.log(JSON.stringify({ tokens: perStream.reduce((a, b) => a + b, 0), wallMs, perStream }));
await context.dispose();
await model.dispose();
await llama.dispose();
