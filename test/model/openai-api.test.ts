import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import OpenAI, { BadRequestError, NotFoundError } from "openai";
import { getLlama, LlamaLogLevel } from "node-llama-cpp";
import { waitForRoutable, workerHealth } from "../helpers/cluster.js";
import { getJson, streamSse, waitFor } from "../helpers/http.js";
import { RANDOM_32K_MODEL, STORIES_MODEL, missingModel, startCoordinatorProc, startWorkerProc, type LogLine, type Served } from "../helpers/processes.js";

/**
 * The OpenAI-compatible API with OpenAI's own client against a real fleet: two stories260K workers
 * (w1, w3; alias "stories") and one llama-2-tiny-random worker (w2).
 */
const skip = missingModel(STORIES_MODEL) ?? missingModel(RANDOM_32K_MODEL);
const STORIES = "stories260K";
const RANDOM = "llama-2-tiny-random";
/** stories260K ends a story with BOS (1) and rarely samples EOS (2): banning both runs to max_tokens. */
const NO_END = { "1": -100, "2": -100 };

describe("the OpenAI API with the openai client", { skip }, () => {
  let coordinator: Served;
  let workers: Record<string, Served>;
  let client: OpenAI;
  let storiesTokens: (text: string) => Promise<number>;
  /** The random model's tokens for `"` and `}`, favoured to end JSON objects early. */
  const closers: Record<string, number> = {};

  before(async () => {
    coordinator = await startCoordinatorProc();
    const env = { PARALLEL: "4" };
    const [w1, w2, w3] = await Promise.all([
      startWorkerProc(coordinator.url, { model: STORIES_MODEL, id: "w1", env, args: ["--model-alias", "stories"] }),
      startWorkerProc(coordinator.url, { model: RANDOM_32K_MODEL, id: "w2", env }),
      startWorkerProc(coordinator.url, { model: STORIES_MODEL, id: "w3", env, args: ["--model-alias", "stories"] }),
    ]);
    workers = { w1: w1!, w2: w2!, w3: w3! };
    await waitForRoutable(coordinator.url, 3);
    client = new OpenAI({ baseURL: `${coordinator.url}/v1`, apiKey: "not-needed", maxRetries: 0, timeout: 60_000 });
    // The engine's own tokenizer, independently of the project's code.
    const llama = await getLlama({ gpu: false, maxThreads: 1, build: "never", logLevel: LlamaLogLevel.error });
    const model = await llama.loadModel({ modelPath: STORIES_MODEL });
    storiesTokens = async (text) => [model.tokens.bos, ...model.tokenize(text)].length;
    const random = await llama.loadModel({ modelPath: RANDOM_32K_MODEL });
    for (const t of [...random.tokenize('"'), ...random.tokenize("}"), ...random.tokenize('a"}').slice(1)]) closers[String(t)] = 8;
  });
  after(async () => {
    await Promise.all([...Object.values(workers ?? {}).map((w) => w.proc.stop()), coordinator?.proc.stop()]);
  });

  /** The worker's own log line for a request (its session's start or end). */
  async function workerLog(workerId: string, requestId: string, msg: "session.start" | "session.end"): Promise<LogLine> {
    return workers[workerId]!.proc.waitForLog((l) => l.msg === msg && l.request_id === requestId, 5000, `${msg} of ${requestId}`);
  }

  async function allIdle(): Promise<void> {
    await waitFor(async () => (await getJson(`${coordinator.url}/coordinator/health`)).body.active_sessions === 0, "coordinator idle");
    for (const w of Object.values(workers)) {
      if (!w.proc.alive) continue;
      await waitFor(async () => {
        const h = await workerHealth(w.url);
        return h.active_sessions === 0 && h.slots.busy === 0 && h.kv_reserved_bytes === 0 && h.kv_cache_bytes === 0;
      }, `${w.proc.name} idle`);
    }
  }

  it("lists the fleet's models with their aliases", async () => {
    const page = await client.models.list();
    assert.deepEqual(page.data.map((m) => m.id), [RANDOM, STORIES]);
    for (const m of page.data) {
      assert.equal(m.object, "model");
      assert.equal(m.owned_by, "inference-engine");
      assert.ok(Number.isInteger(m.created) && m.created > 1_600_000_000);
    }
    assert.deepEqual((page.data[1] as unknown as { aliases: string[] }).aliases, ["stories"]);
    assert.equal((await client.models.retrieve("stories")).id, STORIES);
    await assert.rejects(client.models.retrieve("gpt-4o"), NotFoundError);
  });

  it("completes a prompt: the text is the seed API's, the usage is the engine's token counts", async () => {
    const prompt = "Once upon a time";
    const { data, response } = await client.completions
      .create({ model: "stories", prompt, max_tokens: 24, temperature: 0, logit_bias: NO_END })
      .withResponse();
    assert.equal(data.object, "text_completion");
    assert.match(data.id, /^cmpl-/);
    assert.equal(data.model, STORIES);
    assert.equal(data.choices[0]!.finish_reason, "length");
    const worker = response.headers.get("x-worker-id")!;
    const end = await workerLog(worker, response.headers.get("x-request-id")!, "session.end");
    assert.deepEqual(data.usage, {
      prompt_tokens: await storiesTokens(prompt), completion_tokens: 24, total_tokens: (await storiesTokens(prompt)) + 24,
      prompt_tokens_details: { cached_tokens: 0 },
    });
    assert.equal(end.prompt_tokens, data.usage!.prompt_tokens);
    assert.equal(end.completion_tokens, 24);
    // One pipeline, two front doors: the seed API generates the same text.
    const seed = await streamSse(`${coordinator.url}/coordinator/infer`, { prompt, model: "stories", max_tokens: 24, logit_bias: NO_END });
    assert.equal(seed.text, data.choices[0]!.text);
  });

  it("streams a completion whose chunks join to the same text, with a usage chunk when asked", async () => {
    const body = { model: STORIES, prompt: "The dog", max_tokens: 20, temperature: 0, logit_bias: NO_END };
    const whole = await client.completions.create(body);
    const stream = await client.completions.create({ ...body, stream: true, stream_options: { include_usage: true } });
    let text = "";
    const finishes: (string | null)[] = [];
    let usage: OpenAI.CompletionUsage | undefined | null;
    const ids = new Set<string>();
    for await (const chunk of stream) {
      ids.add(chunk.id);
      if (chunk.usage) usage = chunk.usage;
      for (const c of chunk.choices) {
        text += c.text;
        if (c.finish_reason) finishes.push(c.finish_reason);
      }
    }
    assert.equal(text, whole.choices[0]!.text);
    assert.deepEqual(finishes, ["length"]);
    assert.equal(ids.size, 1);
    assert.deepEqual(usage, whole.usage);
  });

  for (const [model, template] of [[STORIES, "Llama2Chat"], [RANDOM, "General"]] as const) {
    it(`chats with ${model} through its ${template} template, streamed and not, with the engine's counts`, async () => {
      const messages: OpenAI.ChatCompletionMessageParam[] = [
        { role: "system", content: "You tell short stories." },
        { role: "user", content: [{ type: "text", text: "Tell me about " }, { type: "text", text: "a cat." }] },
      ];
      const { data, response } = await client.chat.completions.create({ model, messages, max_tokens: 16, temperature: 0 }).withResponse();
      assert.equal(data.object, "chat.completion");
      assert.match(data.id, /^chatcmpl-/);
      const choice = data.choices[0]!;
      assert.equal(choice.message.role, "assistant");
      assert.equal(typeof choice.message.content, "string");
      assert.ok(["stop", "length"].includes(choice.finish_reason));
      const worker = response.headers.get("x-worker-id")!;
      const rid = response.headers.get("x-request-id")!;
      const start = await workerLog(worker, rid, "session.start");
      const end = await workerLog(worker, rid, "session.end");
      assert.equal(start.template, template);
      assert.equal(data.usage!.prompt_tokens, start.prompt_tokens);
      assert.equal(data.usage!.completion_tokens, end.completion_tokens);
      assert.equal(data.usage!.total_tokens, data.usage!.prompt_tokens + data.usage!.completion_tokens);

      const stream = await client.chat.completions.create({ model, messages, max_tokens: 16, temperature: 0, stream: true });
      let content = "";
      let role: string | undefined;
      let finish: string | null = null;
      for await (const chunk of stream) {
        const c = chunk.choices[0];
        if (c === undefined) continue;
        role ??= c.delta.role;
        content += c.delta.content ?? "";
        finish = c.finish_reason ?? finish;
      }
      assert.equal(role, "assistant");
      assert.equal(content, choice.message.content);
      assert.equal(finish, choice.finish_reason);
    });
  }

  it("stops at stop sequences across token boundaries and never emits them", async () => {
    const body = { model: STORIES, prompt: "Once upon a time", max_tokens: 40, temperature: 0, logit_bias: NO_END };
    const full = (await client.completions.create(body)).choices[0]!.text;
    // Five characters of stories260K's text span several tokens (about 1.5 characters each).
    const stop = full.slice(20, 25);
    const expected = full.slice(0, full.indexOf(stop));
    const cut = await client.completions.create({ ...body, stop: [stop, "zzzz"] });
    assert.equal(cut.choices[0]!.text, expected);
    assert.equal(cut.choices[0]!.finish_reason, "stop");
    assert.ok(cut.usage!.completion_tokens < 40);
    const stream = await client.completions.create({ ...body, stop, stream: true });
    let streamed = "";
    let finish: string | null = null;
    for await (const chunk of stream) {
      streamed += chunk.choices[0]?.text ?? "";
      finish = chunk.choices[0]?.finish_reason ?? finish;
    }
    assert.equal(streamed, expected);
    assert.equal(finish, "stop");
    // The earliest of several stops wins.
    const early = full.slice(8, 11);
    assert.equal((await client.completions.create({ ...body, stop: [stop, early] })).choices[0]!.text, full.slice(0, full.indexOf(early)));
  });

  it("gives the same text for the same seed on the same worker", async () => {
    const run = async (seed: number) =>
      (await client.chat.completions.create({
        model: STORIES, messages: [{ role: "user", content: "Tell me a story" }], max_tokens: 30, temperature: 1, seed,
      })).choices[0]!.message.content;
    const a = await run(42);
    assert.equal(await run(42), a);
    assert.equal(await run(42), a);
    const others = new Set([a, await run(1), await run(2), await run(3)]);
    assert.ok(others.size >= 2, "different seeds sample differently");
  });

  it("enforces a json_schema during generation: the output always parses and validates", async () => {
    const schema = {
      type: "object",
      properties: {
        name: { type: "string", maxLength: 12 },
        age: { type: "integer" },
        mood: { enum: ["happy", "sad", "sleepy"] },
        friends: { type: "array", items: { type: "string", maxLength: 8 }, maxItems: 2 },
      },
      required: ["name", "age", "mood", "friends"],
      additionalProperties: false,
    };
    for (const model of [STORIES, RANDOM]) {
      for (const seed of [1, 2, 3]) {
        const r = await client.chat.completions.create({
          model, seed, temperature: 1, max_tokens: 200,
          messages: [{ role: "user", content: "Describe a character as JSON." }],
          response_format: { type: "json_schema", json_schema: { name: "character", strict: true, schema } },
        });
        const c = r.choices[0]!;
        assert.equal(c.finish_reason, "stop", `${model} seed ${seed} ended by its grammar: ${c.message.content}`);
        const v = JSON.parse(c.message.content!) as Record<string, unknown>;
        assert.deepEqual(Object.keys(v).sort(), ["age", "friends", "mood", "name"]);
        assert.ok(typeof v.name === "string" && v.name.length <= 12);
        assert.ok(Number.isInteger(v.age), c.message.content!);
        assert.ok(["happy", "sad", "sleepy"].includes(v.mood as string));
        assert.ok(Array.isArray(v.friends) && v.friends.length <= 2 && v.friends.every((f) => typeof f === "string" && f.length <= 8));
      }
    }
    // Any JSON object: strings are unbounded, so the closing quote and brace are favoured (a random
    // model would otherwise write one string until max_tokens); the grammar keeps the rest valid.
    for (const seed of [1, 2, 3]) {
      const obj = await client.chat.completions.create({
        model: RANDOM, seed, temperature: 1, max_tokens: 200, messages: [{ role: "user", content: "JSON please" }],
        response_format: { type: "json_object" }, logit_bias: closers,
      });
      const c = obj.choices[0]!;
      assert.equal(c.finish_reason, "stop", c.message.content!);
      const v: unknown = JSON.parse(c.message.content!);
      assert.ok(typeof v === "object" && v !== null && !Array.isArray(v), c.message.content!);
    }
  });

  it("answers an unknown model with NotFoundError (404 model_not_found)", async () => {
    const err = await client.chat.completions.create({ model: "gpt-4o", messages: [{ role: "user", content: "hi" }] }).then(
      () => assert.fail("expected 404"),
      (e: unknown) => e,
    );
    assert.ok(err instanceof NotFoundError);
    assert.equal(err.status, 404);
    assert.equal(err.code, "model_not_found");
    assert.equal(err.param, "model");
  });

  it("answers bad parameters with BadRequestError naming the parameter", async () => {
    const msgs = [{ role: "user" as const, content: "hi" }];
    const cases: [string, () => Promise<unknown>, string][] = [
      ["n: 5, beyond PARALLEL", () => client.chat.completions.create({ model: STORIES, messages: msgs, n: 5 }), "n"],
      ["temperature: 9", () => client.chat.completions.create({ model: STORIES, messages: msgs, temperature: 9 }), "temperature"],
      ["empty messages", () => client.chat.completions.create({ model: STORIES, messages: [] }), "messages"],
      ["a function role", () => client.chat.completions.create({ model: STORIES, messages: [{ role: "function", content: "x", name: "f" }] }), "messages[0].role"],
      ["max_tokens beyond the context", () => client.completions.create({ model: STORIES, prompt: "hi", max_tokens: 100_000 }), "max_tokens"],
      ["max_completion_tokens beyond the context", () => client.chat.completions.create({ model: STORIES, messages: msgs, max_completion_tokens: 100_000 }), "max_completion_tokens"],
      ["a chat longer than the context", () => client.chat.completions.create({ model: STORIES, messages: [{ role: "user", content: "story ".repeat(3000) }] }), "messages"],
      ["a schema with a lookahead in a pattern", () => client.chat.completions.create({
        model: STORIES, messages: msgs,
        response_format: { type: "json_schema", json_schema: { name: "x", schema: { type: "object", properties: { a: { type: "string", pattern: "^(?=a)a" } } } } },
      }), "response_format.json_schema.schema"],
      ["a grammar that does not compile", () => client.completions.create({ model: STORIES, prompt: "hi", grammar: "root ::= (" } as never), "grammar"],
      ["logprobs: 6", () => client.completions.create({ model: STORIES, prompt: "hi", logprobs: 6 }), "logprobs"],
    ];
    for (const [name, call, param] of cases) {
      const err = await call().then(() => assert.fail(`${name}: expected 400`), (e: unknown) => e);
      assert.ok(err instanceof BadRequestError, `${name}: ${String(err)}`);
      assert.equal(err.param, param, name);
    }
    await allIdle();
  });

  it("cancels generation on the worker when a streaming client disconnects", async () => {
    const stream = await client.chat.completions.create(
      { model: STORIES, messages: [{ role: "user", content: "Tell me a long story" }], max_tokens: 1500, logit_bias: NO_END, stream: true },
      { headers: { "x-session-id": "leaves-early" } },
    );
    let chunks = 0;
    for await (const _ of stream) if (++chunks === 3) break; // leaving the loop aborts the request
    const t0 = Date.now();
    const end = await waitFor(
      () => [workers.w1!, workers.w3!].flatMap((w) => w.proc.logs).find((l) => l.msg === "session.end" && l.conversation_id === "leaves-early"),
      "session.end",
      2000,
      10,
    );
    assert.ok(Date.now() - t0 < 1000, "freed within a second");
    assert.equal(end.reason, "disconnect");
    assert.equal(end.kept, false, "a turn cut short is not kept");
    assert.ok((end.completion_tokens as number) < 1500);
    await allIdle();
  });

  it("cancels generation on the worker when a non-streaming client gives up", async () => {
    const ac = new AbortController();
    const pending = client.completions.create({ model: STORIES, prompt: "Once", max_tokens: 1500, logit_bias: NO_END }, { signal: ac.signal });
    pending.catch(() => undefined);
    const start = await waitFor(
      () => [workers.w1!, workers.w3!].flatMap((w) => w.proc.logs).find((l) => l.msg === "session.start" && l.max_tokens === 1500 && l.prompt_tokens === 2),
      "session.start",
    );
    ac.abort();
    const worker = [workers.w1!, workers.w3!].find((w) => w.proc.logs.includes(start))!;
    const end = await worker.proc.waitForLog((l) => l.msg === "session.end" && l.session_id === start.session_id, 1000, "session.end");
    assert.equal(end.reason, "disconnect");
    await allIdle();
  });

  /** The coordinator's view is current: no worker reports or was dispatched a session. */
  async function settled(): Promise<void> {
    await waitFor(async () => {
      const { workers: table } = (await getJson(`${coordinator.url}/coordinator/health/workers`)).body as { workers: { active_sessions: number; dispatched_sessions: number }[] };
      return table.every((w) => w.active_sessions === 0 && w.dispatched_sessions === 0);
    }, "worker table settled");
  }

  it("continues a session on the worker holding its KV: the second turn reports cached tokens", async () => {
    await allIdle();
    await settled();
    const messages: OpenAI.ChatCompletionMessageParam[] = [
      { role: "system", content: "You are a storyteller." },
      { role: "user", content: "Tell me about a dog named Max." },
    ];
    const headers = { "x-session-id": "conversation-42" };
    const t1 = await client.chat.completions.create({ model: "stories", messages, max_tokens: 24, temperature: 0 }, { headers }).withResponse();
    const holder = t1.response.headers.get("x-worker-id")!;
    assert.ok(holder === "w1" || holder === "w3", holder);
    const elsewhere = holder === "w1" ? "w3" : "w1";
    // Turn 1 goes to the conversation's rendezvous home (both workers are idle).
    assert.match(t1.response.headers.get("x-route-decision")!, new RegExp(`;affinity=1\\.0000;.*;home=${holder}(;|$)`));
    await allIdle();
    await settled();
    const h = await workerHealth(workers[holder]!.url);
    assert.equal(h.kept_sessions, 1, "the finished turn's KV is kept");
    assert.equal(h.active_sessions, 0, "a kept session is idle, not active");
    assert.equal(h.slots.busy, 0);
    assert.ok(h.kept_kv_bytes > 0);
    assert.ok(h.cached_sequences >= h.kept_sessions, "the prefix cache counts conversations and anonymous sequences");

    messages.push({ role: "assistant", content: t1.data.choices[0]!.message.content! }, { role: "user", content: "What did Max do next?" });
    const t2 = await client.chat.completions.create({ model: "stories", messages, max_tokens: 24, temperature: 0 }, { headers }).withResponse();
    assert.equal(t2.response.headers.get("x-worker-id"), holder);
    assert.match(t2.response.headers.get("x-route-decision")!, /profile=cache-aware;.*;prefix=0\.[5-9]\d*;.*;prefix_blocks=\d+\/\d+/);
    const cached = t2.data.usage!.prompt_tokens_details!.cached_tokens!;
    assert.ok(cached >= t1.data.usage!.prompt_tokens - 1, `turn 2 reused turn 1's prompt (${cached} cached)`);
    assert.ok(cached < t2.data.usage!.prompt_tokens);
    const start = await workerLog(holder, t2.response.headers.get("x-request-id")!, "session.end");
    assert.equal(start.cached_tokens, cached);

    // The holder goes away: the conversation moves to another worker, its KV rebuilt, no error.
    await workers[holder]!.proc.stop();
    await waitForRoutable(coordinator.url, 2);
    messages.push({ role: "assistant", content: t2.data.choices[0]!.message.content! }, { role: "user", content: "And then?" });
    const t3 = await client.chat.completions.create({ model: "stories", messages, max_tokens: 8, temperature: 0 }, { headers }).withResponse();
    assert.equal(t3.response.headers.get("x-worker-id"), elsewhere);
    assert.ok(t3.data.usage!.prompt_tokens > t2.data.usage!.prompt_tokens);
    await allIdle();
  });
});
