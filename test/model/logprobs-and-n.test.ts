import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import OpenAI, { BadRequestError } from "openai";
import { waitForRoutable } from "../helpers/cluster.js";
import { postJson } from "../helpers/http.js";
import { parsePromText, sampleValue, scrape } from "../helpers/prom-text.js";
import { STORIES_MODEL, missingModel, startCoordinatorProc, startWorkerProc, type Served } from "../helpers/processes.js";

/**
 * logprobs and n through a real fleet on stories260K with the openai client: one native-engine
 * worker (PARALLEL 4) and one node-llama-cpp worker serving the model under another name.
 */
const skip = missingModel(STORIES_MODEL);
const STORIES = "stories260K";
const LLAMA = "stories-llama";
/** stories260K ends a story with BOS (1) and rarely samples EOS (2): banning both runs to max_tokens. */
const NO_END = { "1": -100, "2": -100 };
const EPS = 1e-4;

interface Top { token: string; logprob: number; bytes: number[] | null }
interface Entry extends Top { top_logprobs: Top[] }

/** The sanity every token's entry must pass, whatever the sampling. */
function checkEntry(e: Entry, top: number): void {
  assert.ok(e.logprob <= 0 && Math.exp(e.logprob) <= 1, `logprob ${e.logprob}`);
  assert.equal(Buffer.from(e.bytes!).toString("utf8"), e.token);
  assert.equal(e.top_logprobs.length, top);
  for (let i = 1; i < e.top_logprobs.length; i++) assert.ok(e.top_logprobs[i - 1]!.logprob >= e.top_logprobs[i]!.logprob, "top_logprobs sorted");
  const mass = e.top_logprobs.reduce((t, x) => t + Math.exp(x.logprob), 0);
  assert.ok(mass <= 1 + EPS, `top mass ${mass}`);
  const same = e.top_logprobs.find((x) => x.token === e.token && x.bytes!.join() === e.bytes!.join());
  if (same !== undefined) assert.ok(Math.abs(same.logprob - e.logprob) < EPS, "the chosen token's logprob equals its top entry");
  if (e.top_logprobs.length > 0 && same === undefined) assert.ok(e.logprob <= e.top_logprobs.at(-1)!.logprob + EPS, "a token missing from the top is less likely than all of it");
}

describe("logprobs and n through the OpenAI API", { skip }, () => {
  let coordinator: Served;
  let native: Served;
  let llama: Served;
  let client: OpenAI;

  before(async () => {
    coordinator = await startCoordinatorProc({ MAX_CHOICES: "6" });
    [native, llama] = await Promise.all([
      startWorkerProc(coordinator.url, { model: STORIES_MODEL, id: "wn", env: { PARALLEL: "4", ENGINE: "native" } }),
      startWorkerProc(coordinator.url, { model: STORIES_MODEL, id: "wl", env: { PARALLEL: "2", ENGINE: "llama", MODEL_ID: LLAMA } }),
    ]) as [Served, Served];
    await waitForRoutable(coordinator.url, 2);
    client = new OpenAI({ baseURL: `${coordinator.url}/v1`, apiKey: "not-needed", maxRetries: 0, timeout: 60_000 });
  });
  after(async () => {
    await Promise.all([native?.proc.stop(), llama?.proc.stop(), coordinator?.proc.stop()]);
  });

  it("greedy chat logprobs: one entry per completion token, the chosen token the top entry", async () => {
    const r = await client.chat.completions.create({
      model: STORIES, messages: [{ role: "user", content: "Once upon a time" }], max_tokens: 12, temperature: 0,
      logprobs: true, top_logprobs: 5, logit_bias: NO_END,
    });
    const content = r.choices[0]!.logprobs!.content! as Entry[];
    assert.equal(content.length, r.usage!.completion_tokens);
    assert.equal(content.map((e) => e.token).join(""), r.choices[0]!.message.content);
    for (const e of content) {
      checkEntry(e, 5);
      assert.equal(e.top_logprobs[0]!.token, e.token, "at temperature 0 the choice is the likeliest token");
      assert.ok(Math.abs(e.top_logprobs[0]!.logprob - e.logprob) < EPS);
    }
  });

  it("sampled chat logprobs pass the same checks, and the stream carries the same entries per chunk", async () => {
    const body = {
      model: STORIES, messages: [{ role: "user" as const, content: "Lily saw a dog" }], max_tokens: 10, temperature: 1, seed: 7,
      logprobs: true, top_logprobs: 3, logit_bias: NO_END, presence_penalty: 1.5,
    };
    const whole = await client.chat.completions.create(body);
    const content = whole.choices[0]!.logprobs!.content! as Entry[];
    for (const e of content) checkEntry(e, 3);
    const streamed: Entry[] = [];
    let text = "";
    for await (const chunk of await client.chat.completions.create({ ...body, stream: true })) {
      const c = chunk.choices[0];
      if (c === undefined) continue;
      text += c.delta.content ?? "";
      for (const e of (c.logprobs?.content ?? []) as Entry[]) streamed.push(e);
    }
    assert.equal(text, whole.choices[0]!.message.content);
    // The same tokens; logprobs equal up to float noise (the second request reuses the prompt's KV).
    const close = (a: Top, b: Top) => a.token === b.token && a.bytes!.join() === b.bytes!.join() && Math.abs(a.logprob - b.logprob) < EPS;
    assert.equal(streamed.length, content.length);
    for (let i = 0; i < content.length; i++) {
      assert.ok(close(streamed[i]!, content[i]!), `token ${i}`);
      assert.ok(streamed[i]!.top_logprobs.every((t, k) => close(t, content[i]!.top_logprobs[k]!)), `top of token ${i}`);
    }
  });

  it("logprobs are those after the logit bias and the penalties", async () => {
    const ask = (prompt: string, extra: Record<string, unknown>) => client.completions.create({
      model: STORIES, prompt, max_tokens: 2, temperature: 0, logprobs: 5, ...extra,
    });
    type Legacy = { tokens: string[]; token_logprobs: number[]; top_logprobs: Record<string, number>[] };
    // A token biased far above the rest has all the probability; a banned one none (never listed).
    const biased = (await ask("the dog", { logit_bias: { "300": 100 } })).choices[0]!.logprobs! as Legacy;
    for (const lp of biased.token_logprobs) assert.ok(Math.abs(lp) < EPS, `biased token logprob ${lp}`);
    // A presence penalty of 2 lowers the first token's logit at the second position by 2: its
    // logprob drops, the others' rise. Some prompt makes the model likely to repeat its first token.
    let checked = 0;
    for (const prompt of ["Lily Lily Lily Lily Lily", "the the the the the", "a a a a a a a", "big big big big big"]) {
      const plain = (await ask(prompt, { logit_bias: { "1": -100, "2": -100 } })).choices[0]!.logprobs! as Legacy;
      const penalized = (await ask(prompt, { logit_bias: { "1": -100, "2": -100 }, presence_penalty: 2 })).choices[0]!.logprobs! as Legacy;
      assert.ok(Math.abs(plain.token_logprobs[0]! - penalized.token_logprobs[0]!) < EPS, "nothing to penalize at the first position");
      const first = plain.tokens[0]!;
      const before = plain.top_logprobs[1]![first];
      if (before === undefined) continue;
      const after = penalized.top_logprobs[1]![first];
      assert.ok(after === undefined || after < before - 0.5, `'${first}': ${before} → ${after}`);
      checked++;
    }
    assert.ok(checked > 0, "some prompt repeats its first token among the likeliest 5");
  });

  it("completions logprobs come in the legacy shape", async () => {
    const r = await client.completions.create({ model: STORIES, prompt: "Once upon a time", max_tokens: 6, temperature: 0, logprobs: 2, logit_bias: NO_END });
    const lp = r.choices[0]!.logprobs!;
    assert.equal(lp.tokens!.length, r.usage!.completion_tokens);
    assert.equal(lp.tokens!.join(""), r.choices[0]!.text);
    assert.equal(lp.text_offset![0], 0);
    for (let i = 0; i < lp.tokens!.length; i++) {
      const top = Object.entries(lp.top_logprobs![i]!);
      assert.ok(top.length >= 1 && top.length <= 2);
      assert.equal(top.sort((a, b) => b[1] - a[1])[0]![0], lp.tokens![i]);
      assert.ok(lp.token_logprobs![i]! <= 0);
      if (i > 0) assert.equal(lp.text_offset![i], lp.text_offset![i - 1]! + lp.tokens![i - 1]!.length);
    }
  });

  it("the node-llama-cpp engine refuses logprobs with a 400 naming itself", async () => {
    const r = await postJson(`${coordinator.url}/v1/chat/completions`, {
      model: LLAMA, messages: [{ role: "user", content: "hi" }], max_tokens: 2, logprobs: true,
    });
    assert.equal(r.status, 400);
    assert.equal(r.body.error.param, "logprobs");
    assert.match(r.body.error.message, /llama engine/);
  });

  it("n=3 answers three choices from one prompt evaluation, each with its own seed", async () => {
    const before = parsePromText((await scrape(native.url)).text);
    const prompt = "Ben and Mia went to the zoo. They saw a big lion and a small monkey in a tree.";
    const r = await client.completions.create({ model: STORIES, prompt, max_tokens: 8, n: 3, seed: 11, temperature: 1, logit_bias: NO_END });
    const after = parsePromText((await scrape(native.url)).text);
    assert.deepEqual(r.choices.map((c) => c.index), [0, 1, 2]);
    assert.ok(r.choices.every((c) => c.finish_reason === "length" && c.text.length > 0));
    assert.equal(r.usage!.completion_tokens, 24);
    const evaluatedByFirst = r.usage!.prompt_tokens - r.usage!.prompt_tokens_details!.cached_tokens!;
    const delta = (name: string) => sampleValue(after, name)! - sampleValue(before, name)!;
    assert.equal(delta("inference_worker_prompt_tokens_total"), 3 * r.usage!.prompt_tokens);
    // The first choice evaluates the prompt; the others copy its KV and evaluate only the last
    // prompt token (its logits give their first sample).
    assert.equal(delta("inference_worker_prompt_tokens_total") - delta("inference_worker_prefix_cache_hits_total"), evaluatedByFirst + 2);
    // Choice i samples with seed 11 + i: the same request with n=1 and seed 12 gives choice 1.
    const one = await client.completions.create({ model: STORIES, prompt, max_tokens: 8, seed: 12, temperature: 1, logit_bias: NO_END });
    assert.equal(one.choices[0]!.text, r.choices[1]!.text);
  });

  it("a streamed n=3 chat with logprobs: every chunk names its choice, each choice ends once", async () => {
    const texts = ["", "", ""];
    const finishes = [0, 0, 0];
    const entries = [0, 0, 0];
    let usage: OpenAI.CompletionUsage | undefined;
    const stream = await client.chat.completions.create({
      model: STORIES, messages: [{ role: "user", content: "Tom had a red ball" }], max_tokens: 6, n: 3, seed: 3, temperature: 0.9,
      logprobs: true, top_logprobs: 2, logit_bias: NO_END, stream: true, stream_options: { include_usage: true },
    });
    for await (const chunk of stream) {
      if (chunk.usage) usage = chunk.usage;
      for (const c of chunk.choices) {
        texts[c.index] += c.delta.content ?? "";
        if (c.finish_reason !== null) finishes[c.index]!++;
        for (const e of (c.logprobs?.content ?? []) as Entry[]) {
          checkEntry(e, 2);
          entries[c.index]!++;
        }
      }
    }
    assert.deepEqual(finishes, [1, 1, 1]);
    assert.deepEqual(entries, [6, 6, 6]);
    assert.ok(texts.every((t) => t.length > 0));
    assert.equal(usage!.completion_tokens, 18);
  });

  it("n beyond a worker's PARALLEL or MAX_CHOICES is a 400 naming n", async () => {
    const msgs = [{ role: "user" as const, content: "hi" }];
    const wide = client.chat.completions.create({ model: STORIES, messages: msgs, max_tokens: 2, n: 5 });
    await assert.rejects(wide, (e: unknown) => e instanceof BadRequestError && e.param === "n" && /PARALLEL/.test(e.message));
    const many = client.chat.completions.create({ model: STORIES, messages: msgs, max_tokens: 2, n: 7 });
    await assert.rejects(many, (e: unknown) => e instanceof BadRequestError && e.param === "n");
  });
});
