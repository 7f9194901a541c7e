import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { waitWorkerIdle, workerHealth } from "../helpers/cluster.js";
import { postJson, streamSse } from "../helpers/http.js";
import { STORIES_MODEL, missingModel, startWorkerProc, type Served } from "../helpers/processes.js";

/**
 * `POST /worker/generate` on a real model (stories260K): the one exchange gives what the seed's two
 * calls give (greedy text, token counts, logprobs where the engine serves them), and a conversation
 * kept through it is reused by its next turn.
 */
const skip = missingModel(STORIES_MODEL);
const NO_COORDINATOR = "http://127.0.0.1:9";
/** stories260K ends a story with BOS (token 1): kept from ending early so that every turn runs to its max_tokens. */
const GREEDY = { temperature: 0, logit_bias: { "1": -100, "2": -100 } };

describe("one exchange per request on a real model", { skip }, () => {
  let worker: Served;
  let w: string;
  let engine: string;
  before(async () => {
    worker = await startWorkerProc(NO_COORDINATOR, { model: STORIES_MODEL, env: { PARALLEL: "2" } });
    w = worker.url;
    engine = (await workerHealth(w)).engine;
  });
  after(async () => worker?.proc.stop());

  const idle = () => waitWorkerIdle(w);

  async function twoCalls(body: Record<string, unknown>) {
    const id = randomUUID();
    const p = await postJson(`${w}/worker/prefill`, { ...body, session_id: id });
    assert.equal(p.status, 200, JSON.stringify(p.body));
    const d = await streamSse(`${w}/worker/decode`, { session_id: id });
    assert.equal(d.status, 200, d.raw);
    return { prefill: p.body, events: d.events, text: d.text, last: d.last };
  }

  async function oneCall(body: Record<string, unknown>) {
    const g = await streamSse(`${w}/worker/generate`, { ...body, session_id: randomUUID() });
    assert.equal(g.status, 200, g.raw);
    assert.ok("prefill" in g.events[0], JSON.stringify(g.events[0]));
    return { prefill: g.events[0].prefill, events: g.events.slice(1), text: g.text, last: g.last };
  }

  it("generates the greedy text the two calls generate, with the same acknowledgement and end", async () => {
    const body = { prompt: "Once upon a time", max_tokens: 16, sampling: GREEDY };
    const two = await twoCalls(body);
    await idle();
    const one = await oneCall(body);
    assert.equal(one.text, two.text);
    assert.ok(one.text.length > 0);
    // The second request may reuse the first's kept prefix; every other number is the same.
    assert.deepEqual({ ...one.prefill, cached_tokens: 0 }, { ...two.prefill, cached_tokens: 0 });
    assert.deepEqual(one.events.map((e) => e.seq), two.events.map((e) => e.seq));
    for (const k of ["reason", "prompt_tokens", "completion_tokens", "token"]) assert.equal(one.last[k], two.last[k], k);
    await idle();
  });

  it("carries logprobs on its token events as /worker/decode does", async (t) => {
    if (engine !== "native") return t.skip(`logprobs are served by the native engine; this worker runs ${engine}`);
    const body = { prompt: "The little dog", max_tokens: 6, sampling: { ...GREEDY, top_logprobs: 2 } };
    const two = await twoCalls(body);
    await idle();
    const one = await oneCall(body);
    const tokens = one.events.filter((e) => e.finished === undefined);
    assert.equal(tokens.length, 6);
    for (const e of tokens) {
      assert.equal(e.logprobs.length, 1);
      assert.equal(e.logprobs[0].top_logprobs.length, 2);
    }
    const picked = (events: any[]) => events.filter((e) => e.finished === undefined).map((e) => e.logprobs[0].token);
    assert.deepEqual(picked(one.events), picked(two.events));
    await idle();
  });

  it("keeps a chat conversation through generate: the second turn evaluates only its new tokens", async () => {
    const conversation = `conv-${randomUUID()}`;
    const messages = [{ role: "user", content: "Tell me about a cat." }];
    const t1 = await oneCall({ messages, max_tokens: 12, sampling: GREEDY, conversation_id: conversation });
    assert.equal(t1.last.reason, "length");
    assert.equal((await idle()).kept_sessions, 1);
    messages.push({ role: "assistant", content: t1.text }, { role: "user", content: "And then?" });
    const t2 = await oneCall({ messages, max_tokens: 12, sampling: GREEDY, conversation_id: conversation });
    assert.ok(t2.prefill.cached_tokens >= t1.prefill.prompt_tokens - 1, `cached ${t2.prefill.cached_tokens}`);
    assert.ok(t2.prefill.prompt_tokens > t1.prefill.prompt_tokens);
    assert.equal(t2.last.reason, "length");
  });
});
