import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { Writable } from "node:stream";
import { bindFields, createLogger, type RootLogger } from "../../src/common/logger.js";
import { HttpServer } from "../../src/common/http-server.js";

/** A root logger writing synchronously into `lines`, whose pino `child()` is counted. */
function capture(level: "info" | "warn" = "info"): { root: RootLogger; lines: Record<string, unknown>[]; children: () => number } {
  const lines: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk, _enc, cb) {
      for (const l of String(chunk).split("\n")) if (l.trim() !== "") lines.push(JSON.parse(l) as Record<string, unknown>);
      cb();
    },
  });
  const root = createLogger("coordinator", level, sink);
  let children = 0;
  const child = root.child.bind(root);
  root.child = ((b: Record<string, unknown>) => {
    children++;
    return child(b);
  }) as typeof root.child;
  return { root, lines, children: () => children };
}

describe("request loggers bind their fields lazily", () => {
  it("a line carries every bound field, outermost first, and builds no pino child", async () => {
    const { root, lines, children } = capture();
    const log = bindFields(root, { request_id: "r1" }).child({ worker_id: "w1" }).child({ session_id: "s1" });
    log.info({ tokens: 3 }, "stream.end");
    log.warn("stream.slow_client");
    log.error(new Error("boom"), "worker.failed");
    log.debug({ hidden: true }, "below.level");
    await new Promise((r) => setImmediate(r));
    assert.equal(children(), 0);
    assert.deepEqual(lines.map((l) => l.msg), ["stream.end", "stream.slow_client", "worker.failed"]);
    for (const l of lines) {
      assert.equal(l.request_id, "r1");
      assert.equal(l.worker_id, "w1");
      assert.equal(l.session_id, "s1");
      assert.equal(l.role, "coordinator");
    }
    assert.equal(lines[0]!.tokens, 3);
    assert.equal((lines[2]!.err as { message: string }).message, "boom");
    // The same key order as a pino child's line: base, then the bindings, then the line's own fields.
    assert.deepEqual(Object.keys(lines[0]!).slice(2), ["role", "pid", "request_id", "worker_id", "session_id", "tokens", "msg"]);
  });

  it("a field of the line overrides a bound one of the same name, and siblings do not share fields", async () => {
    const { root, lines } = capture();
    const req = bindFields(root, { request_id: "r2" });
    const a = req.child({ worker_id: "a" });
    const b = req.child({ worker_id: "b" });
    a.info({ worker_id: "a2" }, "one");
    b.info({}, "two");
    req.info({}, "three");
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(lines.map((l) => [l.msg, l.request_id, l.worker_id]), [["one", "r2", "a2"], ["two", "r2", "b"], ["three", "r2", undefined]]);
  });

  it("the HTTP server gives each request a logger with its request id, without a pino child per request", async () => {
    const { root, lines, children } = capture();
    const server = new HttpServer({ log: root, maxBodyBytes: 1024, maxJsonDepth: 8 });
    server.route("GET", "/quiet", (ctx) => void ctx.res.end("ok"));
    server.route("GET", "/loud", (ctx) => {
      ctx.log.child({ worker_id: "w9" }).info({}, "handled");
      ctx.res.end("ok");
    });
    const url = await server.listen(0, "127.0.0.1");
    try {
      for (let i = 0; i < 5; i++) assert.equal((await fetch(`${url}/quiet`)).status, 200);
      const res = await fetch(`${url}/loud`, { headers: { "x-request-id": "req-42" } });
      assert.equal(res.status, 200);
      await new Promise((r) => setImmediate(r));
      assert.equal(children(), 0);
      const line = lines.find((l) => l.msg === "handled");
      assert.equal(line?.request_id, "req-42");
      assert.equal(line?.worker_id, "w9");
    } finally {
      await server.close();
    }
  });
});
