import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { createServer, type Server, type Socket } from "node:net";
import { request } from "node:http";
import { startNodeFloor } from "../../src/bench/perf/start-node-floor.js";

/** An HTTP upstream on 127.0.0.1 port 0 that answers each request with its port and the body it got; counts open sockets. */
async function upstream(): Promise<{ url: string; open: () => number; server: Server }> {
  const sockets = new Set<Socket>();
  const server = createServer((s) => {
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
    let buf = "";
    s.on("data", (d) => {
      buf += d.toString("latin1");
      const end = buf.indexOf("\r\n\r\n");
      if (end < 0) return;
      const len = Number(/content-length: (\d+)/i.exec(buf.slice(0, end))?.[1] ?? 0);
      if (buf.length < end + 4 + len) return;
      const body = `${(server.address() as { port: number }).port}:${buf.slice(end + 4, end + 4 + len)}`;
      buf = buf.slice(end + 4 + len);
      s.write(`HTTP/1.1 200 OK\r\ncontent-length: ${body.length}\r\n\r\n${body}`);
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return { url: `http://127.0.0.1:${(server.address() as { port: number }).port}`, open: () => sockets.size, server };
}

function post(url: string, body: string, agent: import("node:http").Agent): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = request(`${url}/worker/generate`, { method: "POST", agent, headers: { "content-length": Buffer.byteLength(body) } }, (res) => {
      let out = "";
      res.setEncoding("utf8").on("data", (d: string) => (out += d)).on("end", () => resolve(out));
    });
    req.on("error", reject);
    req.end(body);
  });
}

async function until(pred: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 5000;
  while (!pred()) {
    if (Date.now() > deadline) throw new Error(`not within 5 s: ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe("the Node floor relay of the performance suite", () => {
  it("pipes each port's keep-alive connection to its own upstream, both ways, and closes the upstream side when the client goes", async () => {
    const ups = [await upstream(), await upstream()];
    const floor = await startNodeFloor(ups.map((u) => u.url));
    const { Agent } = await import("node:http");
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    try {
      assert.equal(floor.urls.length, 2);
      assert.equal(floor.pids().length, 1);
      for (const [i, u] of ups.entries()) {
        const port = new URL(u.url).port;
        assert.equal(await post(floor.urls[i]!, "hello", agent), `${port}:hello`);
        assert.equal(await post(floor.urls[i]!, "again", agent), `${port}:again`);
        assert.equal(u.open(), 1, "two requests on one client connection use one upstream connection");
      }
      agent.destroy();
      await until(() => ups.every((u) => u.open() === 0), "upstream connections closed after the client went");
    } finally {
      agent.destroy();
      await floor.stop();
      for (const u of ups) u.server.close();
    }
  });
});
