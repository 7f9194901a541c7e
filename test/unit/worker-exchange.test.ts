import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { once } from "node:events";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo, Socket } from "node:net";
import { WorkerClient, WorkerFault } from "../../src/coordinator/fleet/worker-client.js";
import type { Upstream } from "../../src/coordinator/stream/upstream.js";
import { ServingError } from "../../src/protocol/serving-error.js";
import type { PrefillRequest } from "../../src/protocol/worker-api.js";

/**
 * The coordinator's exchanges with a worker, against a stand-in worker on loopback: one
 * /worker/generate per request (its first event is the prefill's answer), the two calls toward a
 * worker without it, refusals classified as the prefill's, and the connection bound.
 */
type Handler = (req: IncomingMessage, res: ServerResponse, body: string) => void;

async function withWorker(handle: Handler, run: (url: string, sockets: Set<Socket>) => Promise<void>): Promise<void> {
  const sockets = new Set<Socket>();
  const server = createServer((req, res) => {
    let body = "";
    req.setEncoding("utf8").on("data", (c: string) => (body += c)).on("end", () => handle(req, res, body));
  });
  server.on("connection", (s: Socket) => sockets.add(s));
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  try {
    await run(`http://127.0.0.1:${(server.address() as AddressInfo).port}`, sockets);
  } finally {
    server.closeAllConnections();
    await new Promise<void>((r) => server.close(() => r()));
  }
}

const ACK = { status: "ok", prompt_tokens: 5, kv_cache_bytes: 10, cached_tokens: 2, worker_id: "w1", max_tokens: 3 };
const BODY: PrefillRequest = { session_id: "s1", model: "m", prompt: "hi", max_tokens: 3, sampling: {} } as PrefillRequest;
const call = () => ({ requestId: "r1", signal: new AbortController().signal });
const token = (t: string, seq: number) => `data: {"token":"${t}","seq":${seq}}\n\n`;
const END = 'data: {"token":"","seq":2,"finished":true,"reason":"length","prompt_tokens":5,"completion_tokens":2}\n\n';

/** Reads an upstream to its end: the text it delivered and how it ended. */
function readAll(up: Upstream): Promise<{ text: string; ended: "end" | "error" }> {
  return new Promise((resolve) => {
    let text = "";
    up.attach({
      data: (c) => (text += c.toString()),
      end: () => resolve({ text, ended: "end" }),
      error: () => resolve({ text, ended: "error" }),
    });
  });
}

describe("the coordinator's exchanges with a worker", () => {
  it("one generate exchange answers the prefill at its acknowledgement and streams the tokens that shared its chunk, in order", async () => {
    const paths: string[] = [];
    await withWorker((req, res, body) => {
      paths.push(req.url!);
      assert.equal(JSON.parse(body).session_id, "s1");
      res.writeHead(200, { "content-type": "text/event-stream" });
      // The acknowledgement and the first tokens in one write (one chunk on the wire).
      res.write(`: keep-alive\n\ndata: ${JSON.stringify({ prefill: ACK })}\n\n${token("a", 0)}${token("b", 1)}`);
      setImmediate(() => res.end(END));
    }, async (url) => {
      const client = new WorkerClient({ connectTimeoutMs: 1000, prefillTimeoutMs: 2000 });
      try {
        const g = await client.generate(url, BODY, call());
        assert.ok(g !== undefined);
        assert.deepEqual(g.prefill, ACK);
        const read = await readAll(g.upstream);
        assert.equal(read.ended, "end");
        assert.equal(read.text, token("a", 0) + token("b", 1) + END);
        assert.deepEqual(paths, ["/worker/generate"]);
        assert.equal(client.generates(url), true);
      } finally {
        await client.close();
      }
    });
  });

  it("a worker that answers generate 404 (an older worker) is served with prefill then decode from then on", async () => {
    await withWorker((req, res) => {
      if (req.url === "/worker/generate") {
        res.writeHead(404, { "content-type": "application/json" });
        res.end(JSON.stringify({ error: "no route for /worker/generate", reason: "not_found" }));
      } else {
        res.writeHead(500).end();
      }
    }, async (url) => {
      const client = new WorkerClient({ connectTimeoutMs: 1000, prefillTimeoutMs: 2000 });
      try {
        assert.equal(await client.generate(url, BODY, call()), undefined);
        assert.equal(client.generates(url), false);
        assert.equal(client.generates("http://127.0.0.1:1"), true, "remembered per worker URL");
      } finally {
        await client.close();
      }
    });
  });

  it("a 404 that names the model is the request's model_not_found, not a missing route", async () => {
    await withWorker((_req, res) => {
      res.writeHead(404, { "content-type": "application/json" });
      res.end(JSON.stringify({ error: "model 'x' is not served", reason: "model_not_found" }));
    }, async (url) => {
      const client = new WorkerClient({ connectTimeoutMs: 1000, prefillTimeoutMs: 2000 });
      try {
        await assert.rejects(client.generate(url, BODY, call()), (e: unknown) => e instanceof ServingError && e.code === "model_not_found");
        assert.equal(client.generates(url), true);
      } finally {
        await client.close();
      }
    });
  });

  it("refusals of generate are classified as the prefill's: capacity 503, the request's 400, a worker's 500", async () => {
    const answers: [number, object][] = [
      [503, { error: "full", reason: "worker_sessions_full" }],
      [400, { error: "prompt too long", reason: "context_length_exceeded", context_size: 8, prompt_tokens: 9 }],
      [500, { error: "boom", reason: "prefill_failed" }],
    ];
    let i = 0;
    await withWorker((_req, res) => {
      const [status, body] = answers[i++]!;
      res.writeHead(status, { "content-type": "application/json" });
      res.end(JSON.stringify(body));
    }, async (url) => {
      const client = new WorkerClient({ connectTimeoutMs: 1000, prefillTimeoutMs: 2000 });
      try {
        await assert.rejects(client.generate(url, BODY, call()), (e: unknown) => e instanceof ServingError && e.code === "worker_sessions_full");
        await assert.rejects(client.generate(url, BODY, call()), (e: unknown) => e instanceof ServingError && e.code === "context_length_exceeded");
        await assert.rejects(client.generate(url, BODY, call()), (e: unknown) => e instanceof WorkerFault && e.kind === "status" && e.status === 500);
      } finally {
        await client.close();
      }
    });
  });

  it("an acknowledgement that does not come within PREFILL_TIMEOUT_MS is a timeout, and the exchange is closed", async () => {
    let closed = false;
    await withWorker((_req, res) => {
      res.writeHead(200, { "content-type": "text/event-stream" });
      res.write(": waiting\n\n");
      res.on("close", () => (closed = true));
    }, async (url) => {
      const client = new WorkerClient({ connectTimeoutMs: 1000, prefillTimeoutMs: 200 });
      try {
        await assert.rejects(client.generate(url, BODY, call()), (e: unknown) => e instanceof WorkerFault && e.kind === "timeout");
        for (let t = 0; !closed && t < 200; t++) await new Promise((r) => setTimeout(r, 10));
        assert.ok(closed, "the worker saw the exchange close");
      } finally {
        await client.close();
      }
    });
  });

  it("a paused upstream holds the worker back (its writes stop), a resumed one lets it finish, and closing one closes the worker's response", async () => {
    const TOTAL = 16 * 1024 * 1024;
    const chunk = token("x".repeat(4096 - 26), 0);
    let written = 0;
    const responses: ServerResponse[] = [];
    await withWorker((_req, res) => {
      responses.push(res);
      res.writeHead(200, { "content-type": "text/event-stream" });
      res.write(`data: ${JSON.stringify({ prefill: ACK })}\n\n`);
      // The second exchange stays open after one token, until the coordinator closes it.
      if (responses.length > 1) return void res.write(token("a", 0));
      void (async () => {
        while (written < TOTAL) {
          written += chunk.length;
          if (!res.write(chunk)) await once(res, "drain");
        }
        res.end();
      })();
    }, async (url) => {
      const client = new WorkerClient({ connectTimeoutMs: 1000, prefillTimeoutMs: 2000 });
      try {
        const g = (await client.generate(url, BODY, call()))!;
        let bytes = 0;
        const ended = new Promise<void>((resolve) => g.upstream.attach({ data: (c) => (bytes += c.length), end: resolve, error: () => {} }));
        g.upstream.pause();
        // Held: the worker's writes stop short of the total (the socket buffers fill, then its own).
        let last = -1;
        for (let t = 0; t < 300 && written !== last; t++) {
          last = written;
          await new Promise((r) => setTimeout(r, 50));
        }
        assert.ok(written < TOTAL, `the worker was held back (${written} of ${TOTAL} bytes written)`);
        const heldAt = bytes;
        g.upstream.resume();
        await ended;
        assert.ok(heldAt < TOTAL);
        assert.equal(bytes, written, "everything the worker wrote arrived once resumed");
        // A second exchange, closed by the coordinator mid-stream: the worker sees its response close.
        const h = (await client.generate(url, BODY, call()))!;
        h.upstream.attach({ data: () => {}, end: () => {}, error: () => {} });
        const closed = once(responses[1]!, "close");
        h.upstream.destroy();
        await closed;
        assert.equal(h.upstream.destroyed, true);
      } finally {
        await client.close();
      }
    });
  });

  it("connections toward one worker stay within the bound, and are reused", async () => {
    let open = 0;
    const waiting: ServerResponse[] = [];
    await withWorker((_req, res) => {
      open++;
      res.writeHead(200, { "content-type": "text/event-stream" });
      res.write(token("a", 0));
      waiting.push(res);
    }, async (url, sockets) => {
      const client = new WorkerClient({ connectTimeoutMs: 1000, prefillTimeoutMs: 5000, maxConnectionsPerWorker: 2 });
      try {
        const streams = Array.from({ length: 4 }, (_, i) => client.decode(url, `s${i}`, 1, call()));
        const first = await Promise.all(streams.slice(0, 2));
        await new Promise((r) => setTimeout(r, 100));
        assert.equal(open, 2, "two answered: the other two wait for a connection");
        assert.equal(sockets.size, 2);
        // Two streams end: the waiting calls take their connections.
        for (const res of waiting.splice(0)) res.end(END);
        await Promise.all(first.map(readAll));
        const rest = await Promise.all(streams.slice(2));
        assert.equal(open, 4);
        assert.equal(sockets.size, 2, "the two connections were reused");
        for (const res of waiting.splice(0)) res.end(END);
        await Promise.all(rest.map(readAll));
      } finally {
        await client.close();
      }
    });
  });
});
