import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { createServer, type IncomingHttpHeaders } from "node:http";
import type { AddressInfo } from "node:net";
import { REPO_ROOT } from "../helpers/processes.js";

/** The image's health check script (HEALTHCHECK, Kubernetes exec probes) against a stand-in server on 127.0.0.1. */
const SCRIPT = `${REPO_ROOT}/deploy/container/healthcheck.mjs`;

async function withServer(status: (path: string, headers: IncomingHttpHeaders) => number, f: (port: number) => Promise<void>): Promise<void> {
  const server = createServer((req, res) => res.writeHead(status(req.url ?? "", req.headers)).end("{}"));
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  try {
    await f((server.address() as AddressInfo).port);
  } finally {
    server.close();
  }
}

function check(args: string[], env: Record<string, string>): Promise<number> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [SCRIPT, ...args], { env: { PATH: process.env.PATH ?? "", ...env }, stdio: "ignore" });
    child.once("exit", (code) => resolve(code ?? -1));
  });
}

describe("the container health check", () => {
  it("passes for a coordinator whose /coordinator/health answers 200, and fails on 503", async () => {
    await withServer((p) => (p === "/coordinator/health" ? 200 : 404), async (port) => {
      assert.equal(await check(["coordinator"], { PORT: String(port) }), 0);
    });
    await withServer(() => 503, async (port) => {
      assert.equal(await check(["coordinator"], { PORT: String(port) }), 1);
    });
  });

  it("sends the cluster token to a worker's /worker/health", async () => {
    const token = "healthcheck-test-token-0123456789";
    await withServer((p, h) => (p === "/worker/health" && h.authorization === `Bearer ${token}` ? 200 : 401), async (port) => {
      assert.equal(await check(["worker"], { WORKER_PORT: String(port), CLUSTER_TOKEN: token }), 0);
      assert.equal(await check(["worker"], { WORKER_PORT: String(port), CLUSTER_TOKEN: "some-other-token-0123456789" }), 1);
    });
  });

  it("without a role, passes when either role answers, and fails when nothing listens", async () => {
    await withServer((p) => (p === "/worker/health" ? 200 : 404), async (port) => {
      assert.equal(await check([], { WORKER_PORT: String(port), PORT: "1" }), 0);
    });
    assert.equal(await check([], { WORKER_PORT: "1", PORT: "1" }), 1);
    assert.equal(await check(["nonsense"], {}), 2);
  });
});
