import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { createServer, type IncomingMessage, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DEMO_SPEC } from "../../src/engine/model-source.js";
import { writeLlamaGguf } from "../../src/engine/gguf-writer.js";
import { streamSse } from "../helpers/http.js";
import { freePort } from "../helpers/ports.js";
import { spawnCli, type Proc } from "../helpers/processes.js";

/**
 * `pull` against a stand-in hub on 127.0.0.1: the hub answers `/<owner>/<repo>/resolve/main/<file>`
 * with a redirect to a "CDN" on another origin (as the real hub does for LFS files), naming the
 * file's sha256 in X-Linked-Etag; the CDN serves byte ranges and can cut a response short.
 */
interface Seen {
  path: string;
  range: string | undefined;
  ifRange: string | undefined;
  authorization: string | undefined;
}

const listen = (s: Server) => new Promise<number>((r) => s.listen(0, "127.0.0.1", () => r((s.address() as AddressInfo).port)));
const close = (s: Server) => new Promise<void>((r) => s.close(() => r()));

async function runCli(args: string[], env: Record<string, string>): Promise<{ code: number | null; stdout: string; stderr: string; proc: Proc }> {
  const proc = spawnCli("pull", args, env);
  let stdout = "";
  proc.child.stdout!.on("data", (c: string) => (stdout += c));
  const { code } = await proc.exited;
  return { code, stdout, stderr: proc.stderr.join(""), proc };
}

describe("inference-engine pull", () => {
  let dir: string;
  let gguf: Buffer;
  let sha: string;
  let hub: Server;
  let cdn: Server;
  let hubUrl: string;
  const seen: Seen[] = [];
  /** Bytes after which the CDN cuts the next full response, once. */
  let cutNextAt: number | undefined;

  const record = (req: IncomingMessage) =>
    seen.push({
      path: req.url ?? "", range: req.headers.range, ifRange: req.headers["if-range"] as string | undefined,
      authorization: req.headers.authorization,
    });

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "pull-"));
    const src = join(dir, "src.gguf");
    await writeLlamaGguf(src, DEMO_SPEC);
    gguf = await readFile(src);
    sha = createHash("sha256").update(gguf).digest("hex");
    cdn = createServer((req, res) => {
      record(req);
      if (req.url !== "/blobs/tiny") return void res.writeHead(404).end();
      const etag = `"${sha.slice(0, 16)}"`;
      const m = /^bytes=(\d+)-$/.exec(req.headers.range ?? "");
      const start = m && (req.headers["if-range"] === undefined || req.headers["if-range"] === etag) ? Number(m[1]) : 0;
      if (start >= gguf.length) return void res.writeHead(416, { "content-range": `bytes */${gguf.length}` }).end();
      const body = gguf.subarray(start);
      const headers: Record<string, string | number> = { etag, "content-length": body.length, "accept-ranges": "bytes" };
      if (start > 0) headers["content-range"] = `bytes ${start}-${gguf.length - 1}/${gguf.length}`;
      res.writeHead(start > 0 ? 206 : 200, headers);
      if (cutNextAt !== undefined) {
        const at = cutNextAt;
        cutNextAt = undefined;
        // The connection stalls after `at` bytes, then drops (as a flaky network does).
        res.write(body.subarray(0, at), () => setTimeout(() => res.destroy(), 300));
        return;
      }
      res.end(body);
    });
    const cdnUrl = `http://127.0.0.1:${await listen(cdn)}`;
    hub = createServer((req, res) => {
      record(req);
      const m = /^\/org\/repo\/resolve\/main\/([^/]+)$/.exec(req.url ?? "");
      if (m === null || m[1] === "missing.gguf") return void res.writeHead(404).end("Entry not found");
      const linked = m[1] === "corrupt.gguf" ? "0".repeat(64) : sha;
      res.writeHead(302, { location: `${cdnUrl}/blobs/tiny`, "x-linked-etag": `"${linked}"`, "x-linked-size": String(gguf.length) }).end();
    });
    hubUrl = `http://127.0.0.1:${await listen(hub)}`;
  });
  after(async () => {
    await Promise.all([close(hub), close(cdn)]);
    await rm(dir, { recursive: true, force: true });
  });

  const env = () => ({ HF_ENDPOINT: hubUrl, HF_TOKEN: "hf_secret" });

  it("downloads an hf: file through the hub's redirect, verifies its sha256 and shows progress", async () => {
    const models = join(dir, "m1");
    seen.length = 0;
    const r = await runCli(["pull", "hf:org/repo/tiny.gguf", "--models-dir", models], env());
    assert.equal(r.code, 0, r.stderr);
    const path = join(models, "tiny.gguf");
    assert.equal(r.stdout.trim().endsWith(path), true, r.stdout);
    assert.equal(createHash("sha256").update(await readFile(path)).digest("hex"), sha);
    assert.match(r.stderr, /pull \[#+\] 100%/);
    assert.match(r.stderr, new RegExp(`sha256 ${sha} verified \\(server\\)`));
    assert.equal(existsSync(`${path}.part`), false);
    // The token goes to the hub only, never to the host it redirects to.
    assert.deepEqual(seen.map((s) => [s.path, s.authorization]), [["/org/repo/resolve/main/tiny.gguf", "Bearer hf_secret"], ["/blobs/tiny", undefined]]);

    const again = await runCli(["pull", "hf:org/repo/tiny.gguf", "--models-dir", models], env());
    assert.equal(again.code, 0);
    assert.match(again.stdout, /already present/);
    assert.equal(seen.length, 2, "nothing fetched for a file already there");
  });

  it("resumes with a Range request when the connection drops mid-file", async () => {
    const models = join(dir, "m2");
    seen.length = 0;
    cutNextAt = Math.floor(gguf.length / 3);
    const r = await runCli(["pull", "hf:org/repo/tiny.gguf", "--models-dir", models], env());
    assert.equal(r.code, 0, r.stderr);
    assert.equal(createHash("sha256").update(await readFile(join(models, "tiny.gguf"))).digest("hex"), sha);
    const cdnHits = seen.filter((s) => s.path === "/blobs/tiny");
    assert.equal(cdnHits.length, 2);
    assert.equal(cdnHits[0]!.range, undefined);
    assert.equal(cdnHits[1]!.range, `bytes=${Math.floor(gguf.length / 3)}-`);
    assert.equal(cdnHits[1]!.ifRange, `"${sha.slice(0, 16)}"`, "the resumed range is guarded by the ETag");
  });

  it("resumes a partial file left by an earlier run", async () => {
    const models = join(dir, "m3");
    await mkdir(models, { recursive: true });
    const half = Math.floor(gguf.length / 2);
    await writeFile(join(models, "tiny.gguf.part"), gguf.subarray(0, half));
    seen.length = 0;
    const r = await runCli(["pull", "hf:org/repo/tiny.gguf", "--models-dir", models], env());
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /resumed at/);
    assert.equal(seen.find((s) => s.path === "/blobs/tiny")!.range, `bytes=${half}-`);
    assert.equal(createHash("sha256").update(await readFile(join(models, "tiny.gguf"))).digest("hex"), sha);
  });

  it("refuses a file whose sha256 does not match, and keeps nothing of it", async () => {
    const models = join(dir, "m4");
    const wrong = await runCli(["pull", "hf:org/repo/tiny.gguf", "--models-dir", models, "--sha256", "1".repeat(64)], env());
    assert.equal(wrong.code, 1);
    assert.match(wrong.stderr, /checksum mismatch/);
    const corrupt = await runCli(["pull", "hf:org/repo/corrupt.gguf", "--models-dir", models], env());
    assert.equal(corrupt.code, 1);
    assert.match(corrupt.stderr, /checksum mismatch/);
    for (const f of ["tiny.gguf", "tiny.gguf.part", "corrupt.gguf", "corrupt.gguf.part"]) assert.equal(existsSync(join(models, f)), false, f);
  });

  it("fails at once, naming the status, for a file the hub does not have", async () => {
    seen.length = 0;
    const r = await runCli(["pull", "hf:org/repo/missing.gguf", "--models-dir", join(dir, "m5")], env());
    assert.equal(r.code, 1);
    assert.match(r.stderr, /404/);
    assert.equal(seen.length, 1, "a 404 is not retried");
  });

  it("pulls from a plain URL and checks a given sha256", async () => {
    const models = join(dir, "m6");
    const cdnPort = (cdn.address() as AddressInfo).port;
    // The CDN's path has no .gguf name; a URL of the hub's resolve path does.
    const r = await runCli(["pull", `${hubUrl}/org/repo/resolve/main/plain.gguf`, "--models-dir", models, "--sha256", sha], { HF_ENDPOINT: `http://127.0.0.1:${cdnPort}` });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /verified \(given\)/);
    assert.ok(existsSync(join(models, "plain.gguf")));
  });

  it("`serve --model hf:…` pulls the model first, then serves it", async () => {
    const models = join(dir, "m7");
    const port = await freePort();
    const serve = spawnCli("serve", ["serve", "--model", "hf:org/repo/served.gguf", "--workers", "1", "--port", String(port), "--worker-port", "0", "--models-dir", models], {
      ...env(), HEARTBEAT_INTERVAL_MS: "200", PARALLEL: "1",
    });
    try {
      const done = await serve.waitForLog((l) => l.msg === "model.pull.done", 30_000, "model.pull.done");
      assert.equal(done.sha256, sha);
      assert.equal(done.verified, "server");
      await serve.waitForLog((l) => typeof l.msg === "string" && l.msg.startsWith("serve.ready"), 30_000, "serve.ready");
      await serve.waitForLog((l) => l.msg === "worker.joined", 30_000, "worker.joined");
      const res = await streamSse(`http://127.0.0.1:${port}/coordinator/infer`, { prompt: "the cat", model: "served", max_tokens: 4 });
      assert.equal(res.status, 200);
      assert.equal(res.last.finished, true);
    } finally {
      await serve.stop();
    }
  });
});
