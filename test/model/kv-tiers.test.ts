import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { createLogger } from "../../src/common/logger.js";
import type { Engine, EngineSequence, SequenceState } from "../../src/engine/engine.js";
import { loadNativeBinding } from "../../src/engine/native-binding.js";
import { createNativeEngine } from "../../src/engine/native-engine.js";
import { KvTiers } from "../../src/worker/kv-tiers.js";
import { saveWhenIdle } from "../../src/worker/save-when-idle.js";
import { STORIES_MODEL, missingModel } from "../helpers/processes.js";

/**
 * A conversation's KV through each tier and back: the restored sequence continues exactly as the
 * original did (greedy, stories260K), and a file that is corrupt, truncated or another engine's is
 * refused, deleted and never handed to llama.cpp.
 */
const skip = missingModel(STORIES_MODEL) ?? (process.platform !== "linux" ? "the native engine is built on Linux only" : undefined);
const log = createLogger("test", "error");
const PROMPT = "Once upon a time, there was a little girl named Lily. She loved to play outside";
const GREEDY_TOKENS = 24;

async function continuation(seq: EngineSequence, prompt: number[]): Promise<{ ids: number[]; reused: number }> {
  const r = await seq.prefill(prompt, new AbortController().signal);
  const ids: number[] = [];
  for await (const t of seq.generate({ sampling: { temperature: 0 }, maxTokens: GREEDY_TOKENS, signal: new AbortController().signal })) ids.push(t.id);
  return { ids, reused: r.reused };
}

describe("KV tiers on the native engine", { skip }, () => {
  let engine: Engine;
  let prompt: number[];
  let expected: number[];
  let state: SequenceState;
  const dirs: string[] = [];
  const tmp = () => {
    const d = mkdtempSync(join(tmpdir(), "kv-tier-test-"));
    dirs.push(d);
    return d;
  };
  const tiers = (dir: string | undefined, hostBytes: number, identity = engine.info.kvStateIdentity!) =>
    new KvTiers({ identity, hostBytes, diskDir: dir, diskBytes: 64 << 20, log });

  before(async () => {
    assert.ok(loadNativeBinding().ok);
    engine = await createNativeEngine({
      modelPath: STORIES_MODEL, modelId: "stories", threads: 1, threadsBatch: 1, parallel: 2, contextSize: 256, batchSize: 256, poll: 0,
      cpuBackend: "auto", modelBytes: statSync(STORIES_MODEL).size, log,
    });
    prompt = engine.tokenize(PROMPT);
    const seq = engine.sequences[0]!;
    expected = (await continuation(seq, prompt)).ids;
    assert.equal(expected.length, GREEDY_TOKENS);
    // The state a turn leaves behind: its prompt only, as a conversation kept before its next turn.
    await seq.clear();
    await seq.prefill(prompt, new AbortController().signal);
    state = (await seq.saveState!())!;
    assert.ok(state !== undefined && state.tokens.length === prompt.length && state.bytes.byteLength > 0);
    await seq.clear();
  });

  after(async () => {
    await engine?.close();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  async function restoredContinuation(restored: SequenceState): Promise<{ ids: number[]; reused: number }> {
    const seq = engine.sequences[1]!;
    await seq.clear();
    assert.equal(await seq.restoreState!(restored), true);
    assert.deepEqual([...seq.heldTokens()], prompt);
    const out = await continuation(seq, prompt);
    await seq.clear();
    return out;
  }

  it("a sequence restored through the host tier continues exactly as the original", async () => {
    const t = tiers(undefined, 16 << 20);
    t.put("conv-a", state, []);
    assert.equal(t.peek("conv-a")?.tier, "host");
    const got = await t.take("conv-a");
    assert.equal(got?.tier, "host");
    const out = await restoredContinuation(got!.state);
    assert.deepEqual(out.ids, expected);
    // Only the last prompt token is evaluated: its logits give the first sample.
    assert.equal(out.reused, prompt.length - 1);
  });

  it("a sequence restored through the disk tier after a restart continues exactly as the original", async () => {
    const dir = tmp();
    const first = tiers(dir, 0);
    first.put("conv-b", state, ["k1"]);
    await first.flushed();
    assert.equal(readdirSync(dir).filter((n) => n.endsWith(".kvs")).length, 1);
    const restarted = tiers(dir, 0);
    assert.equal(restarted.peek("conv-b")?.tier, "disk");
    assert.deepEqual(restarted.entries()[0]?.blocks, ["k1"]);
    const got = await restarted.take("conv-b");
    assert.equal(got?.tier, "disk");
    assert.deepEqual((await restoredContinuation(got!.state)).ids, expected);
    assert.equal(readdirSync(dir).length, 0, "a restored conversation's file is gone");
  });

  it("an entry pushed out of the host tier by its byte limit lands on disk and still restores", async () => {
    const dir = tmp();
    const bytes = state.bytes.byteLength + state.tokens.length * 4;
    const t = tiers(dir, bytes);
    t.put("old", state, []);
    t.put("new", state, []);
    assert.equal(t.peek("old")?.tier, "disk");
    assert.equal(t.peek("new")?.tier, "host");
    await t.flushed();
    const got = await t.take("old");
    assert.deepEqual((await restoredContinuation(got!.state)).ids, expected);
  });

  for (const [name, damage] of [
    ["a corrupted file", (f: string) => {
      const b = readFileSync(f);
      b[b.length - 100] = b[b.length - 100]! ^ 0xff;
      writeFileSync(f, b);
    }],
    ["a truncated file", (f: string) => writeFileSync(f, readFileSync(f).subarray(0, statSync(f).size - 10))],
  ] as const) {
    it(`${name} is refused, deleted and never loaded`, async () => {
      const dir = tmp();
      const t = tiers(dir, 0);
      t.put("conv", state, []);
      await t.flushed();
      const file = join(dir, readdirSync(dir)[0]!);
      damage(file);
      const restarted = tiers(dir, 0);
      const got = restarted.peek("conv") === undefined ? undefined : await restarted.take("conv");
      assert.equal(got, undefined);
      assert.equal(restarted.stats().discarded, 1);
      assert.deepEqual(readdirSync(dir), []);
    });
  }

  it("a file saved by another model or engine build is refused at the index rebuild", async () => {
    const dir = tmp();
    const t = tiers(dir, 0, "another-identity");
    t.put("conv", state, []);
    await t.flushed();
    const restarted = tiers(dir, 0);
    assert.equal(restarted.peek("conv"), undefined);
    assert.equal(restarted.stats().discarded, 1);
    assert.deepEqual(readdirSync(dir), []);
  });

  it("state bytes that do not fit this context are refused by the engine and leave the sequence empty", async () => {
    const seq = engine.sequences[1]!;
    const garbage = new Uint8Array(state.bytes.byteLength).fill(7);
    assert.equal(await seq.restoreState!({ bytes: garbage, tokens: state.tokens }), false);
    assert.deepEqual([...seq.heldTokens()], []);
    // A short state: cut in the middle of its KV rows.
    assert.equal(await seq.restoreState!({ bytes: state.bytes.subarray(0, state.bytes.byteLength >> 1), tokens: state.tokens }), false);
    // Token ids that do not match the state's cell count.
    assert.equal(await seq.restoreState!({ bytes: state.bytes, tokens: state.tokens.slice(0, 3) }), false);
    // The sequence still works afterwards.
    assert.deepEqual((await continuation(seq, prompt)).ids, expected);
    await seq.clear();
  });

  it("a restore asked while another sequence decodes is done between two steps at its first call", async () => {
    // The decode loop runs a queued restore before building its next batch: no busy answer to retry.
    const busy = engine.sequences[0]!;
    const seq = engine.sequences[1]!;
    await busy.clear();
    await seq.clear();
    await busy.prefill(prompt, new AbortController().signal);
    let generating = true;
    const gen = (async () => {
      for await (const _ of busy.generate({ sampling: { temperature: 0 }, maxTokens: 200, signal: new AbortController().signal })) void _;
      generating = false;
    })();
    let restores = 0;
    // Bounded: at most 20 restores, and only while the other sequence generates.
    while (generating && restores < 20) {
      await seq.clear();
      assert.equal(await seq.restoreState!(state), true);
      assert.deepEqual([...seq.heldTokens()], prompt);
      restores++;
    }
    await gen;
    assert.ok(restores > 0);
    assert.deepEqual((await continuation(seq, prompt)).ids, expected);
    await seq.clear();
    await busy.clear();
  });

  it("a prefix copied from another sequence by a prefill cancelled before any decode is saved with its bytes", async (t) => {
    // A prefill sharing another sequence's prefix has llama.cpp copy that KV stream: the cells at
    // once, the bytes only at the next decode. Cancelled in the same batch of commands, no decode
    // followed: the loop lands the copy itself, and until then a save or restore answers busy.
    // Before that, a save read the stream's old bytes under the copied cells.
    const donor = engine.sequences[0]!;
    const taker = engine.sequences[1]!;
    await donor.clear();
    await taker.clear();
    await donor.prefill(prompt, new AbortController().signal);
    const longer = [...prompt, ...engine.tokenize(" and run in the park.").slice(1)];
    // Something else in the taker's KV stream first, so that uncopied bytes show.
    const other = engine.tokenize("The big dog ran fast down the hill to find a red ball in the tall green grass by the old tree near the river");
    assert.ok(other.length >= prompt.length);
    let copied: SequenceState | undefined;
    // Bounded: the cancel must reach the decode loop in the same batch of commands as the prefill.
    for (let attempt = 0; attempt < 40 && copied === undefined; attempt++) {
      await taker.prefill(other, new AbortController().signal);
      await taker.clear();
      const ac = new AbortController();
      const p = taker.prefill(longer, ac.signal);
      ac.abort();
      await p.catch(() => undefined);
      if (taker.heldTokens().length !== prompt.length) continue; // the prefill ran to its end first
      copied = await saveWhenIdle(taker, prompt, 5_000);
      assert.ok(copied !== undefined, "the staged copy was never landed");
    }
    if (copied === undefined) {
      t.diagnostic("the cancel never met its prefill before a decode step: the staged copy was not exercised");
    } else {
      assert.deepEqual(copied.tokens, prompt);
      await donor.clear();
      assert.equal(await donor.restoreState!(copied), true);
      assert.deepEqual((await continuation(donor, prompt)).ids, expected);
    }
    await donor.clear();
    await taker.clear();
  });
});
