import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { getLlama, LlamaLogLevel, type Token } from "node-llama-cpp";
import { startCluster, type Cluster } from "../helpers/cluster.js";
import { getJson, streamSse } from "../helpers/http.js";
import { REPO_ROOT, STORIES_MODEL, missingModel } from "../helpers/processes.js";

const skip = missingModel(STORIES_MODEL);

/** What node-llama-cpp itself generates greedily for a prompt, with no project code involved. */
async function referenceGreedy(prompt: string, maxTokens: number): Promise<string> {
  const llama = await getLlama({ gpu: false, maxThreads: 1, build: "never", logLevel: LlamaLogLevel.error });
  const model = await llama.loadModel({ modelPath: STORIES_MODEL });
  const ctx = await model.createContext({ contextSize: 512, threads: 1 });
  const seq = ctx.getSequence();
  const input = [model.tokens.bos!, ...model.tokenize(prompt)] as Token[];
  const out: Token[] = [];
  for await (const t of seq.evaluate(input, { temperature: 0 })) {
    if (model.isEogToken(t) || t === model.tokens.bos) break;
    out.push(t);
    if (out.length >= maxTokens) break;
  }
  const text = model.detokenize(out);
  await ctx.dispose();
  await model.dispose();
  await llama.dispose();
  return text;
}

describe("a streamed completion through the coordinator", { skip }, () => {
  let cluster: Cluster;
  before(async () => {
    cluster = await startCluster({ workers: 1, model: STORIES_MODEL });
  });
  after(async () => cluster?.stop());

  it("equals what llama.cpp generates greedily for the same prompt", async () => {
    const prompt = "Once upon a time";
    const expected = await referenceGreedy(prompt, 60);
    const res = await streamSse(`${cluster.url}/coordinator/infer`, { prompt, model: "tinyllama-1.1b", max_tokens: 60 });
    assert.equal(res.status, 200);
    assert.equal(res.text, expected);
    assert.equal(res.last.finished, true);
    assert.equal(res.last.reason, "length");
    assert.equal(res.events.filter((e) => e.finished === false).length, 60);
    assert.match(String(res.headers["x-route-decision"]), /^worker=w1;profile=cache-aware;score=[0-9.]+;prefix=0\.0000;affinity=0\.0000;in_flight=1\.0000;/);
  });
});

/** llama.cpp's CPU backend built for this machine by npm ci (x86-64 Linux with a compiler only). */
const BUILT_CPU_BACKEND = `${REPO_ROOT}/native/build/libggml-cpu-native.so`;

describe("a worker on the CPU kernels built for this machine (CPU_BACKEND=native)", {
  skip: skip || (existsSync(BUILT_CPU_BACKEND) ? false : `no CPU backend was built for this machine (${BUILT_CPU_BACKEND})`),
}, () => {
  let cluster: Cluster;
  before(async () => {
    cluster = await startCluster({ workers: 1, model: STORIES_MODEL, workerEnv: { CPU_BACKEND: "native" } });
  });
  after(async () => cluster?.stop());

  it("loads them, says so in its health, and generates what llama.cpp generates greedily", async () => {
    const health = await getJson(`${cluster.workers[0]!.url}/worker/health`);
    assert.equal(health.body.cpu_backend, "native");
    assert.ok(cluster.workers[0]!.proc.logs.some((l) => l.msg === "engine.native" && l.cpu_backend === "libggml-cpu-native.so"));
    const prompt = "Once upon a time";
    const expected = await referenceGreedy(prompt, 60);
    const res = await streamSse(`${cluster.url}/coordinator/infer`, { prompt, model: "m", max_tokens: 60 });
    assert.equal(res.status, 200);
    assert.equal(res.text, expected);
    assert.equal(res.last.reason, "length");
  });
});
