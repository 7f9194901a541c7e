import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { resolve } from "node:path";
import { waitForRoutable } from "../helpers/cluster.js";
import { postJson } from "../helpers/http.js";
import { freePort } from "../helpers/ports.js";
import { REPO_ROOT, startCoordinatorProc, startWorkerProc, type Proc, type Served } from "../helpers/processes.js";
import { spawn } from "node:child_process";

/**
 * Two coordinators on loopback and one worker on the demo model. The worker reaches c2 through a
 * proxy that delays every chunk by ONE_WAY_MS each way, so its heartbeats (and any cache change they
 * carry) reach c2 at least 2 × ONE_WAY_MS late, while the client reaches c2 directly. A client
 * without a session id sends turn 1 through c1 and turn 2 at once through c2: c2 must already know
 * the worker's cache entry, because the worker tells every coordinator before it ends the stream.
 */
const ONE_WAY_MS = 60;
/** Far above the proxied round trip; the test measures the wait, never relies on a sleep. */
const ANNOUNCE_WAIT_MS = 3000;

let c1: Served;
let c2: Served;
let w1: Served;
let proxy: ReturnType<typeof spawn>;
const stoppers: Proc[] = [];

const SYSTEM = "You are a careful storyteller who writes short, plain stories for young readers, one scene at a time.";

describe("a cache entry reaches every coordinator before the stream that left it ends", () => {
  before(async () => {
    c1 = await startCoordinatorProc();
    c2 = await startCoordinatorProc();
    stoppers.push(c1.proc, c2.proc);
    const c2Port = new URL(c2.url).port;
    const proxyPort = await freePort();
    proxy = spawn(process.execPath, [resolve(REPO_ROOT, "dist/test/fleet/delay-proxy.js"), "127.0.0.1", String(proxyPort), "127.0.0.1", c2Port, String(ONE_WAY_MS)], {
      stdio: ["ignore", "pipe", "inherit"],
    });
    await new Promise<void>((ok, fail) => {
      proxy.stdout!.once("data", () => ok());
      proxy.once("exit", (code) => fail(new Error(`delay proxy exited ${code}`)));
    });
    w1 = await startWorkerProc(`${c1.url},http://127.0.0.1:${proxyPort}`, {
      id: "w1",
      // A long interval: only the beats a cache change asks for can carry the entry in time.
      env: { HEARTBEAT_INTERVAL_MS: "5000", CACHE_ANNOUNCE_WAIT_MS: String(ANNOUNCE_WAIT_MS) },
    });
    stoppers.push(w1.proc);
    await Promise.all([waitForRoutable(c1.url, 1), waitForRoutable(c2.url, 1)]);
  });

  after(async () => {
    await Promise.all(stoppers.map((p) => p.stop()));
    proxy?.kill("SIGTERM");
  });

  it("turn 2 of a conversation without a session id, sent at once through the other coordinator, is routed by its prefix", async () => {
    for (let i = 0; i < 3; i++) {
      const turn1 = [
        { role: "system", content: SYSTEM },
        { role: "user", content: `Story ${i}: tell me about a small fox who finds a lantern in the snow at night.` },
      ];
      const t0 = performance.now();
      const r1 = await postJson(`${c1.url}/v1/chat/completions`, { model: "demo", messages: turn1, max_tokens: 16 });
      const turn1Ms = performance.now() - t0;
      assert.equal(r1.status, 200, JSON.stringify(r1.body));
      const answer = r1.body.choices[0].message.content as string;
      const r2 = await postJson(`${c2.url}/v1/chat/completions`, {
        model: "demo", max_tokens: 8,
        messages: [...turn1, { role: "assistant", content: answer }, { role: "user", content: "And then what happened?" }],
      });
      assert.equal(r2.status, 200, JSON.stringify(r2.body));
      const decision = String(r2.headers["x-route-decision"]);
      const m = /prefix_blocks=(\d+)\/(\d+)/.exec(decision);
      assert.ok(m !== null && Number(m[1]) > 0, `turn 2 through c2 should match the prefix turn 1 left: ${decision}`);
      // The end of turn 1 waited for the proxied coordinator's answer, within the bound.
      assert.ok(turn1Ms >= 2 * ONE_WAY_MS && turn1Ms < ANNOUNCE_WAIT_MS + 2000, `turn 1 took ${turn1Ms.toFixed(0)} ms`);
    }
  });
});

