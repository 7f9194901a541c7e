import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { TokenStream, type TokenStreamHooks } from "../../src/engine/native-token-stream.js";

/** Records what the stream asks of the native side. */
function recorder(begin: TokenStreamHooks["begin"] = () => undefined) {
  const calls: string[] = [];
  const hooks: TokenStreamHooks = {
    begin: () => {
      calls.push("begin");
      return begin();
    },
    grant: (n) => calls.push(`grant ${n}`),
    cancel: () => calls.push("cancel"),
  };
  return { calls, hooks };
}

describe("the token stream of a native generation", () => {
  it("starts the generation on the first pull and hands tokens over in order", async () => {
    const { calls, hooks } = recorder();
    const s = new TokenStream(hooks, new AbortController().signal, 4);
    assert.deepEqual(calls, []);
    const first = s.next();
    assert.deepEqual(calls, ["begin"]);
    s.push(7, "a");
    s.push(8, "b");
    s.finish(undefined);
    assert.deepEqual(await first, { done: false, value: { id: 7, text: "a" } });
    assert.deepEqual(await s.next(), { done: false, value: { id: 8, text: "b" } });
    assert.deepEqual(await s.next(), { done: true, value: undefined });
    assert.deepEqual(s.ids, [7, 8]);
  });

  it("earns credit back in steps as the consumer takes tokens", async () => {
    const { calls, hooks } = recorder();
    const s = new TokenStream(hooks, new AbortController().signal, 4);
    const pending = s.next();
    for (let i = 0; i < 10; i++) s.push(i, "");
    await pending;
    for (let i = 1; i < 10; i++) await s.next();
    assert.deepEqual(calls, ["begin", "grant 4", "grant 4"]);
  });

  it("ends at once on abort, with nothing more yielded, and cancels the native generation once", async () => {
    const { calls, hooks } = recorder();
    const ac = new AbortController();
    const s = new TokenStream(hooks, ac.signal, 4);
    const waiting = s.next();
    ac.abort();
    assert.deepEqual(await waiting, { done: true, value: undefined });
    s.push(1, "x");
    assert.deepEqual(await s.next(), { done: true, value: undefined });
    await s.return();
    assert.deepEqual(calls, ["begin", "cancel"]);
  });

  it("does not cancel a generation that already ended", async () => {
    const { calls, hooks } = recorder();
    const s = new TokenStream(hooks, new AbortController().signal, 4);
    const p = s.next();
    s.finish(undefined);
    assert.deepEqual(await p, { done: true, value: undefined });
    await s.return();
    assert.deepEqual(calls, ["begin"]);
  });

  it("delivers queued tokens before a failure, then rejects", async () => {
    const { hooks } = recorder();
    const s = new TokenStream(hooks, new AbortController().signal, 4);
    const p = s.next();
    s.push(1, "x");
    s.finish(new Error("decode failed"));
    assert.equal((await p).done, false);
    await assert.rejects(s.next(), /decode failed/);
  });

  it("rejects when the generation cannot begin, without cancelling anything", async () => {
    const { calls, hooks } = recorder(() => Promise.reject(new Error("bad grammar")));
    const s = new TokenStream(hooks, new AbortController().signal, 4);
    await assert.rejects(s.next(), /bad grammar/);
    await s.return();
    assert.deepEqual(calls, ["begin"]);
  });

  it("never begins when aborted before the first pull", async () => {
    const { calls, hooks } = recorder();
    const ac = new AbortController();
    ac.abort();
    const s = new TokenStream(hooks, ac.signal, 4);
    assert.deepEqual(await s.next(), { done: true, value: undefined });
    assert.deepEqual(calls, []);
  });
});
