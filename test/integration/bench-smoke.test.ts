import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startCluster, type Cluster } from "../helpers/cluster.js";
import { spawnCli } from "../helpers/processes.js";

/** Runs `inference-engine bench … --json` as a process and returns its report. */
async function bench(args: string[]): Promise<any> {
  const proc = spawnCli("bench", ["bench", "--json", "--progress", "off", "--duration-s", "30", ...args]);
  let out = "";
  proc.child.stdout!.on("data", (c: string) => (out += c));
  const { code } = await proc.exited;
  assert.equal(code, 0, `bench exited ${code}: ${proc.stderr.join("")}`);
  // The report is the one JSON document on stdout.
  return JSON.parse(out.slice(out.indexOf("{")));
}

describe("the bench tool against a coordinator and two sim workers", () => {
  let cluster: Cluster;
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "bench-smoke-"));
    cluster = await startCluster({
      workers: 2,
      workerArgs: ["--engine", "sim", "--sim-itl-ms", "20", "--sim-prefill-base-ms", "1"],
      // No admission queue: capacity refusals are immediate 503s, which the bench counts as rejections.
      coordinatorEnv: { SYSTEM_MAX_SESSIONS: "2", QUEUE_SIZE: "0" },
    });
  });
  after(async () => {
    await cluster?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it("reports every request, token and latency sample of a fixed-concurrency run", async () => {
    const svg = join(dir, "chart.svg");
    const out = join(dir, "report.json");
    const r = await bench([
      "--url", cluster.url, "--num-requests", "12", "--concurrency", "2", "--input-tokens", "16", "--output-tokens", "8",
      "--slo-ttft-ms", "100000", "--svg", svg, "--out", out,
    ]);
    assert.deepEqual(r.requests, { total: 12, completed: 12, failed: 0, rejected: 0, byReason: [{ outcome: "completed", status: 200, reason: "ok", count: 12 }] });
    // Each prompt is " <index>" and 15 four-byte words: 62 or 63 bytes, 16 sim tokens, plus BOS.
    assert.deepEqual(r.tokens, { prompt: 12 * 17, completion: 12 * 8 });
    assert.equal(r.latencyMs.ttft.count, 12);
    assert.equal(r.latencyMs.e2e.count, 12);
    assert.equal(r.latencyMs.tpot.count, 12);
    assert.equal(r.latencyMs.itl.count, 12 * 7);
    for (const k of ["mean", "p50", "p90", "p99"]) assert.ok(r.latencyMs.ttft[k] > 0 && r.latencyMs.ttft[k] <= r.latencyMs.e2e.max);
    assert.equal(r.goodput.goodRequests, 12);
    if (r.prefixCache !== null) assert.equal(r.prefixCache.requests, 12); // where the seed API reports cached tokens
    assert.ok(r.throughput.outputTokensPerS > 0 && r.durationS > 0);
    assert.equal(r.config.concurrency, 2);
    assert.match(await readFile(svg, "utf8"), /^<svg [^]*<\/svg>\n$/);
    const saved = JSON.parse(await readFile(out, "utf8"));
    assert.equal(saved.results.length, 12);
    assert.deepEqual(saved.requests, r.requests);
  });

  it("counts the coordinator's capacity rejections by reason", async () => {
    const r = await bench(["--url", cluster.url, "--num-requests", "12", "--concurrency", "6", "--input-tokens", "8", "--output-tokens", "8"]);
    assert.equal(r.requests.total, 12);
    assert.equal(r.requests.failed, 0);
    assert.ok(r.requests.rejected > 0, JSON.stringify(r.requests));
    assert.equal(r.requests.completed + r.requests.rejected, 12);
    const rejected = r.requests.byReason.find((b: any) => b.outcome === "rejected");
    assert.deepEqual([rejected.status, rejected.reason], [503, "system_sessions_full"]);
    assert.equal(r.latencyMs.rejection.count, r.requests.rejected);
    assert.equal(r.tokens.completion, r.requests.completed * 8);
  });

  for (const target of ["openai-completions", "openai-chat"]) {
    it(`drives the OpenAI API (${target}) with a multi-turn chat and reports its prefix-cache hits`, async () => {
      const r = await bench([
        "--target", target, "--url", cluster.url, "--model", "sim", "--workload", "chat", "--users", "2", "--turns", "3",
        "--system-prompt-tokens", "48", "--user-tokens", "4", "--output-tokens", "4", "--concurrency", "2",
      ]);
      assert.deepEqual(r.requests.byReason, [{ outcome: "completed", status: 200, reason: "ok", count: 6 }]);
      assert.equal(r.tokens.completion, 24);
      assert.equal(r.prefixCache.requests, 6);
      assert.equal(r.prefixCache.promptTokens, r.tokens.prompt);
      // Later turns of a conversation find its history in the worker's KV cache.
      assert.ok(r.prefixCache.cachedTokens > 0, JSON.stringify(r.prefixCache));
    });
  }

  it("drives workers directly with a multi-turn chat and reads their cached-token counts", async () => {
    const workerUrls = cluster.workers.map((w) => w.url).join(",");
    const r = await bench([
      "--target", "worker", "--url", workerUrls, "--workload", "chat", "--users", "3", "--turns", "2",
      "--system-prompt-tokens", "32", "--user-tokens", "4", "--output-tokens", "4", "--concurrency", "3", "--num-requests", "100",
    ]);
    assert.equal(r.requests.completed, 6);
    assert.equal(r.tokens.completion, 24);
    assert.equal(r.prefixCache.requests, 6);
    assert.equal(r.prefixCache.promptTokens, r.tokens.prompt);
    assert.equal(r.config.num_requests, 6);
  });
});
