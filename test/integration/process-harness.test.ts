import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { startChild, stopChild } from "../../src/common/process-harness.js";

/** A child that logs a listening line and, with `stubborn`, ignores SIGTERM. */
function child(script: string) {
  return startChild({ name: "child", command: process.execPath, args: ["-e", script], env: { PATH: process.env.PATH ?? "" } });
}

const LISTENING = `console.log(JSON.stringify({ msg: "server.listening", url: "http://127.0.0.1:1" }));`;

describe("the process harness", () => {
  it("reads the listening line among other output and stops the child with SIGTERM", async () => {
    const c = child(`console.log("not json"); ${LISTENING} setInterval(() => {}, 1000);`);
    const line = await c.waitListening(10_000);
    assert.equal(line.url, "http://127.0.0.1:1");
    assert.equal(c.logs.length, 1);
    await c.stop();
    assert.deepEqual(await c.exited, { code: null, signal: "SIGTERM" });
  });

  it("a child that ignores SIGTERM is SIGKILLed after the grace period", async () => {
    const c = child(`process.on("SIGTERM", () => {}); ${LISTENING} setInterval(() => {}, 1000);`);
    await c.waitListening(10_000);
    await stopChild(c.child, 200);
    assert.deepEqual(await c.exited, { code: null, signal: "SIGKILL" });
  });

  it("a child that exits before listening rejects the wait, naming its exit code", async () => {
    const c = child(`console.error("boom"); process.exit(3);`);
    await assert.rejects(c.waitListening(10_000), /child exited \(3\) before server.listening/);
  });
});
