import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { chooseEngine, chooseThreads, TINY_MODEL_BYTES } from "../../src/engine/engine-tuning.js";

describe("the engine a worker runs", () => {
  const cases: { name: string; input: Parameters<typeof chooseEngine>[0]; engine?: string; throws?: RegExp }[] = [
    { name: "auto on CPU with the addon built is native", input: { requested: "auto", gpu: "off", nativeUnavailable: undefined }, engine: "native" },
    { name: "auto without the addon falls back to node-llama-cpp", input: { requested: "auto", gpu: "off", nativeUnavailable: "not built" }, engine: "llama" },
    { name: "auto with a GPU is node-llama-cpp", input: { requested: "auto", gpu: "cuda", nativeUnavailable: undefined }, engine: "llama" },
    { name: "auto with GPU=auto is node-llama-cpp", input: { requested: "auto", gpu: "auto", nativeUnavailable: undefined }, engine: "llama" },
    { name: "llama is node-llama-cpp even on CPU", input: { requested: "llama", gpu: "off", nativeUnavailable: undefined }, engine: "llama" },
    { name: "native is native", input: { requested: "native", gpu: "off", nativeUnavailable: undefined }, engine: "native" },
    { name: "native without the addon is refused", input: { requested: "native", gpu: "off", nativeUnavailable: "not built" }, throws: /ENGINE=native: not built/ },
    { name: "native with a GPU is refused", input: { requested: "native", gpu: "vulkan", nativeUnavailable: undefined }, throws: /CPU only/ },
  ];
  for (const c of cases) {
    it(c.name, () => {
      if (c.throws) assert.throws(() => chooseEngine(c.input), c.throws);
      else assert.equal(chooseEngine(c.input).engine, c.engine);
    });
  }
});

describe("the compute threads of a worker", () => {
  const MB = 1024 * 1024;
  const cases: { name: string; input: Parameters<typeof chooseThreads>[0]; threads?: number; throws?: RegExp }[] = [
    { name: "a tiny model runs on one thread", input: { requested: "auto", cores: 2, localWorkers: 1, modelBytes: 1 * MB, force: false }, threads: 1 },
    { name: "a larger model takes all cores of a lone worker", input: { requested: "auto", cores: 2, localWorkers: 1, modelBytes: 60 * MB, force: false }, threads: 2 },
    { name: "workers share the cores", input: { requested: "auto", cores: 8, localWorkers: 4, modelBytes: 200 * MB, force: false }, threads: 2 },
    { name: "more workers than cores still get one thread", input: { requested: "auto", cores: 2, localWorkers: 4, modelBytes: 200 * MB, force: false }, threads: 1 },
    { name: "the tiny-model bound is exclusive", input: { requested: "auto", cores: 2, localWorkers: 1, modelBytes: TINY_MODEL_BYTES, force: false }, threads: 2 },
    { name: "an explicit count that fits is kept", input: { requested: 2, cores: 2, localWorkers: 1, modelBytes: 1 * MB, force: false }, threads: 2 },
    { name: "an oversubscribing count is refused", input: { requested: 3, cores: 2, localWorkers: 1, modelBytes: 1 * MB, force: false }, throws: /exceeds the 2 cores/ },
    { name: "workers together may not oversubscribe", input: { requested: 2, cores: 2, localWorkers: 2, modelBytes: 1 * MB, force: false }, throws: /2 local worker/ },
    { name: "forcing allows oversubscription", input: { requested: 4, cores: 2, localWorkers: 1, modelBytes: 1 * MB, force: true }, threads: 4 },
  ];
  for (const c of cases) {
    it(c.name, () => {
      if (c.throws) assert.throws(() => chooseThreads(c.input), c.throws);
      else assert.equal(chooseThreads(c.input), c.threads);
    });
  }
});
