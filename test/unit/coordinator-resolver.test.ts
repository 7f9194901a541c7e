import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { createServer, type Server } from "node:http";
import { once } from "node:events";
import { CoordinatorResolver } from "../../src/worker/coordinator-resolver.js";
import { HeartbeatSender } from "../../src/worker/heartbeat-sender.js";
import { createLogger } from "../../src/common/logger.js";
import { waitFor } from "../helpers/http.js";

describe("coordinator names in COORDINATOR_URL", () => {
  it("turns every address of a name's answer into its own coordinator, following the answer as it changes", async () => {
    let answer: string[] = ["10.0.0.1", "10.0.0.2"];
    const r = new CoordinatorResolver(["http://coord.fleet.test:1337/", "http://10.9.9.9:1337"], async () => answer);
    assert.equal(r.dynamic, true);
    assert.deepEqual((await r.resolve()).urls, ["http://10.0.0.1:1337", "http://10.0.0.2:1337", "http://10.9.9.9:1337"]);
    answer = ["10.0.0.2", "10.0.0.3", "fd00::1"];
    assert.deepEqual((await r.resolve()).urls, ["http://10.0.0.2:1337", "http://10.0.0.3:1337", "http://[fd00::1]:1337", "http://10.9.9.9:1337"]);
  });

  it("keeps a name's last answer while its lookup fails, and reports the failure", async () => {
    let fail = false;
    const r = new CoordinatorResolver(["http://coord.fleet.test:1337"], async () => {
      if (fail) throw new Error("queryA ETIMEOUT coord.fleet.test");
      return ["10.0.0.1"];
    });
    assert.deepEqual((await r.resolve()).urls, ["http://10.0.0.1:1337"]);
    fail = true;
    const again = await r.resolve();
    assert.deepEqual(again.urls, ["http://10.0.0.1:1337"]);
    assert.deepEqual(again.failed.map((f) => f.entry), ["http://coord.fleet.test:1337"]);
  });

  it("never looks up IP literals or localhost", async () => {
    const r = new CoordinatorResolver(["http://127.0.0.1:1337", "http://localhost:9/", "http://[::1]:2"], async () => assert.fail("no lookup"));
    assert.equal(r.dynamic, false);
    assert.deepEqual((await r.resolve()).urls, ["http://127.0.0.1:1337", "http://localhost:9", "http://[::1]:2"]);
  });

  it("a worker heartbeats a coordinator added to its name's records within one interval, and stops beating a removed one", async () => {
    // Two heartbeat sinks on one port of two loopback addresses: one name, two A records.
    const beats = new Map<string, number>();
    const sink = (addr: string): Server => createServer((req, res) => {
      req.resume();
      req.on("end", () => {
        beats.set(addr, (beats.get(addr) ?? 0) + 1);
        res.writeHead(200, { "content-type": "application/json" }).end('{"status":"ok"}');
      });
    });
    const a = sink("127.0.0.2").listen(0, "127.0.0.2");
    await once(a, "listening");
    const port = (a.address() as { port: number }).port;
    const b = sink("127.0.0.3").listen(port, "127.0.0.3");
    await once(b, "listening");
    let answer = ["127.0.0.2"];
    const intervalMs = 100;
    const sender = new HeartbeatSender([`http://coord.fleet.test:${port}`], intervalMs, () => ({}) as never, createLogger("worker", "silent"), {}, async () => answer);
    try {
      sender.start();
      await waitFor(() => (beats.get("127.0.0.2") ?? 0) >= 2, "beats to the first coordinator", 5000, 10);
      assert.equal(beats.get("127.0.0.3"), undefined);
      // Beats to the first coordinator count the ticks (one per interval): no clock in the assertion.
      const ticksBefore = beats.get("127.0.0.2")!;
      answer = ["127.0.0.2", "127.0.0.3"];
      await waitFor(() => beats.get("127.0.0.3"), "a beat to the added coordinator", 5000, 5);
      const ticks = beats.get("127.0.0.2")! - ticksBefore;
      assert.ok(ticks <= 2, `the added coordinator heard from the worker at the next interval's tick (${ticks} ticks later)`);
      assert.deepEqual(sender.coordinatorUrls(), [`http://127.0.0.2:${port}`, `http://127.0.0.3:${port}`]);
      answer = ["127.0.0.3"];
      await waitFor(() => sender.coordinatorUrls().length === 1, "the removed coordinator dropped", 5000, 5);
      const before = beats.get("127.0.0.2")!;
      const b3 = beats.get("127.0.0.3")!;
      await waitFor(() => beats.get("127.0.0.3")! >= b3 + 3, "three more beats to the remaining coordinator", 5000, 10);
      assert.ok(beats.get("127.0.0.2")! <= before + 1, "no beats to the removed coordinator (one may have been in flight)");
    } finally {
      sender.stop();
      a.close();
      b.close();
    }
  });
});
