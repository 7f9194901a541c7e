import { mkdtempSync, readdirSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import { createLogger } from "../../src/common/logger.js";
import { createRng } from "../../src/common/rng.js";
import type { SequenceState } from "../../src/engine/engine.js";
import { KvStateFileError, decodeStateFile, encodeStateFile } from "../../src/worker/kv-state-file.js";
import { KvCostModel, chooseRestore, reusablePrefix } from "../../src/worker/kv-restore-rule.js";
import { KvTiers } from "../../src/worker/kv-tiers.js";

const log = createLogger("test", "error");
const state = (tokens: number, bytes: number, fill = 1): SequenceState => ({
  tokens: Array.from({ length: tokens }, (_, i) => i + 1), bytes: new Uint8Array(bytes).fill(fill),
});

describe("the KV state file", () => {
  it("round-trips tokens, state bytes and block keys", () => {
    const s = state(5, 100, 9);
    const d = decodeStateFile(encodeStateFile("c", "id", s, ["b1"]), "id");
    assert.deepEqual(d.state.tokens, s.tokens);
    assert.deepEqual([...d.state.bytes], [...s.bytes]);
    assert.deepEqual(d.header.blocks, ["b1"]);
  });

  const file = encodeStateFile("c", "id", state(5, 100), []);
  for (const [name, bytes, identity, reason] of [
    ["another identity", file, "other", /another model/],
    ["a truncated body", file.subarray(0, file.length - 1), "id", /truncated/],
    ["trailing bytes", Buffer.concat([file, Buffer.from([0])]), "id", /trailing/],
    ["a flipped state byte", Buffer.from(file).fill(3, file.length - 1), "id", /checksum/],
    ["no magic", Buffer.from("hello world, not ours"), "id", /not a KV state file/],
  ] as const) {
    it(`refuses ${name}`, () => assert.throws(() => decodeStateFile(Buffer.from(bytes), identity), (e: Error) => e instanceof KvStateFileError && reason.test(e.message)));
  }
});

describe("the restore rule", () => {
  const costs = { prefillMsPerToken: 1, restoreMsPerToken: { host: 0.05, disk: 0.2 } };
  it("restores when loading the whole state costs less than prefilling what the slot lacks", () => {
    assert.equal(chooseRestore(costs, "host", 100, 100, 0).restore, true);
    assert.equal(chooseRestore(costs, "disk", 100, 100, 0).restore, true);
  });
  it("prefills when the slot already holds the prefix or the gain is too small for the state's size", () => {
    assert.equal(chooseRestore(costs, "host", 100, 100, 100).restore, false);
    // 1000-token state (disk: 200 ms) for a 150-token gain (150 ms): prefill.
    assert.equal(chooseRestore(costs, "disk", 1000, 150, 0).restore, false);
    assert.equal(chooseRestore(costs, "host", 1000, 150, 0).restore, true);
  });
  it("counts reusable tokens as the prefill does (the last prompt token is always evaluated)", () => {
    assert.equal(reusablePrefix([1, 2, 3], [1, 2, 3]), 2);
    assert.equal(reusablePrefix([1, 2, 3], [1, 2, 3, 4]), 3);
    assert.equal(reusablePrefix([1, 9], [1, 2, 3]), 1);
  });
  it("follows measurements and weighs a tier hit by 1 - restore/prefill per token", () => {
    const m = new KvCostModel(costs);
    assert.equal(m.tierWeight("host"), 0.95);
    m.observeRestore("host", 100, 100); // 1 ms/token moves the mean by 20% of the gap
    assert.ok(Math.abs(m.costs.restoreMsPerToken.host - 0.24) < 1e-9);
    m.observePrefill(4, 1000); // too few tokens: overhead, ignored
    assert.equal(m.costs.prefillMsPerToken, 1);
  });
});

describe("KV tier limits under churn", () => {
  const dirs: string[] = [];
  after(() => {
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  it("a copy for another worker leaves the entry where it was, in host memory or on disk", async () => {
    const dir = mkdtempSync(join(tmpdir(), "kv-copy-"));
    dirs.push(dir);
    const t = new KvTiers({ identity: "id", hostBytes: 1000, diskDir: dir, diskBytes: 100_000, log });
    t.put("on-disk", state(4, 2000, 5), ["d1"]);
    t.put("in-host", state(3, 500, 6), ["h1"]);
    await t.flushed();
    const host = await t.copy("in-host");
    const disk = await t.copy("on-disk");
    assert.deepEqual([host?.tier, host?.blocks, host?.state.tokens], ["host", ["h1"], [1, 2, 3]]);
    assert.deepEqual([disk?.tier, disk?.blocks, disk?.state.tokens, disk?.state.bytes.byteLength], ["disk", ["d1"], [1, 2, 3, 4], 2000]);
    assert.deepEqual(t.entries().map((e) => [e.key, e.tier]), [["in-host", "host"], ["on-disk", "disk"]]);
    assert.equal(await t.copy("absent"), undefined);
    assert.deepEqual([t.stats().restored_host, t.stats().restored_disk], [0, 0], "a copy is no restore");
  });

  it("host and disk bytes stay within their limits through 400 puts, takes and deletes", async () => {
    const dir = mkdtempSync(join(tmpdir(), "kv-churn-"));
    dirs.push(dir);
    const hostLimit = 20_000;
    const diskLimit = 50_000;
    const t = new KvTiers({ identity: "id", hostBytes: hostLimit, diskDir: dir, diskBytes: diskLimit, log });
    const r7 = createRng(7);
    const rng = () => r7.next();
    for (let i = 0; i < 400; i++) {
      const key = `c${Math.floor(rng() * 40)}`;
      const r = rng();
      if (r < 0.7) t.put(key, state(1 + Math.floor(rng() * 50), 100 + Math.floor(rng() * 9000)), []);
      else if (r < 0.9) await t.take(key);
      else t.delete(key);
      const st = t.stats();
      assert.ok(st.host_bytes <= hostLimit, `host ${st.host_bytes} > ${hostLimit} at step ${i}`);
      assert.ok(st.disk_bytes <= diskLimit, `disk ${st.disk_bytes} > ${diskLimit} at step ${i}`);
      assert.equal(st.host_bytes, t.entries().filter((e) => e.tier === "host").reduce((a, e) => a + e.bytes, 0));
    }
    await t.flushed();
    // Deletions of files being written land after the write: wait for the folder to match the index.
    const deadline = Date.now() + 5000;
    const size = (f: string) => {
      try {
        return statSync(f).size;
      } catch {
        return 0; // deleted between the listing and here
      }
    };
    const onDisk = () => readdirSync(dir).filter((n) => n.endsWith(".kvs")).reduce((a, n) => a + size(join(dir, n)), 0);
    while (onDisk() !== t.stats().disk_bytes && Date.now() < deadline) await new Promise((r) => setImmediate(r));
    assert.equal(onDisk(), t.stats().disk_bytes);
    assert.ok(onDisk() <= diskLimit);
    // A restart with a smaller limit keeps the newest files only.
    const restarted = new KvTiers({ identity: "id", hostBytes: 0, diskDir: dir, diskBytes: 20_000, log });
    assert.ok(restarted.stats().disk_bytes <= 20_000);
    assert.equal(restarted.stats().discarded, 0);
  });
});
