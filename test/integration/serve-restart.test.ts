import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { createServer } from "node:net";
import type { AddressInfo } from "node:net";
import { spawnCli } from "../helpers/processes.js";

/**
 * `serve` restarts a crashed worker with backoff: a worker that dies at once (its port is taken
 * here) is started again after 0.5 s, 1 s, 2 s… and never in a tight loop.
 */
describe("serve's worker restarts", () => {
  it("a worker that dies at every start is restarted with doubling delays, not in a spin", async () => {
    const blocker = createServer();
    await new Promise<void>((r) => blocker.listen(0, "127.0.0.1", r));
    const taken = (blocker.address() as AddressInfo).port;
    const serve = spawnCli("serve", ["serve", "--port", "0", "--workers", "1", "--worker-port", String(taken), "--engine", "sim"]);
    try {
      const exits: { restart_in_ms: unknown; at: number }[] = [];
      for (let n = 0; n < 3; n++) {
        await serve.waitForLog((l) => l.msg === "worker.exited" && l.restarts === n, 15_000, `worker.exited #${n + 1}`)
          .then((l) => exits.push({ restart_in_ms: l.restart_in_ms, at: Date.now() }));
      }
      assert.deepEqual(exits.map((e) => e.restart_in_ms), [500, 1000, 2000]);
      // The second restart waited its 1 s (the worker itself takes some time to start and die).
      assert.ok(exits[2]!.at - exits[1]!.at >= 1000, `${exits[2]!.at - exits[1]!.at} ms between the 2nd and 3rd exit`);
      assert.equal(serve.logs.filter((l) => l.msg === "worker.exited").length, 3, "no extra restarts meanwhile");
    } finally {
      await serve.stop();
      await new Promise<void>((r) => blocker.close(() => r()));
    }
  });
});
