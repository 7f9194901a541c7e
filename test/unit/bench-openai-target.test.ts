import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { Target } from "../../src/bench/targets.js";

/**
 * The bench tool's OpenAI client against a minimal server that speaks the wire format (this server
 * stands in for no part of the project: it only checks what the client sends and parses).
 */
describe("the bench tool's OpenAI client", () => {
  let server: Server;
  let url: string;
  const seen: any[] = [];
  before(async () => {
    server = createServer((req, res) => {
      let body = "";
      req.setEncoding("utf8").on("data", (c: string) => (body += c)).on("end", () => {
        const b = JSON.parse(body);
        seen.push({ path: req.url, body: b, session: req.headers["x-session-id"] });
        if (b.model === "missing") {
          res.writeHead(404, { "content-type": "application/json" });
          return res.end(JSON.stringify({ error: { message: "no such model", type: "invalid_request_error", param: "model", code: "model_not_found" } }));
        }
        res.writeHead(200, { "content-type": "text/event-stream" });
        const chat = req.url === "/v1/chat/completions";
        const chunk = (text: string) => `data: ${JSON.stringify({ object: "x", choices: [chat ? { index: 0, delta: { content: text }, finish_reason: null } : { index: 0, text, finish_reason: null }] })}\n\n`;
        if (chat) res.write(`data: ${JSON.stringify({ choices: [{ index: 0, delta: { role: "assistant", content: "" }, finish_reason: null }] })}\n\n`);
        res.write(chunk("Hello"));
        res.write(chunk(" world"));
        res.write(`data: ${JSON.stringify({ choices: [{ index: 0, ...(chat ? { delta: {} } : { text: "" }), finish_reason: "length" }] })}\n\n`);
        res.write(`data: ${JSON.stringify({ choices: [], usage: { prompt_tokens: 9, completion_tokens: 2, total_tokens: 11, prompt_tokens_details: { cached_tokens: 4 } } })}\n\n`);
        res.end("data: [DONE]\n\n");
      });
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(() => new Promise<void>((r) => server.close(() => r())));

  for (const kind of ["openai-completions", "openai-chat"] as const) {
    it(`streams ${kind} with usage and cached tokens`, async () => {
      const target = new Target({ kind, urls: [url], model: "m", timeoutMs: 5000 });
      const messages = [{ role: "user" as const, content: "hi" }];
      const r = await target.send({ index: 3, prompt: "hi", messages, maxTokens: 2, sessionId: "user-1" }, 7, new AbortController().signal);
      await target.close();
      assert.equal(r.outcome, "completed");
      assert.deepEqual([r.index, r.startMs, r.status, r.reason, r.text], [3, 7, 200, "ok", "Hello world"]);
      assert.deepEqual([r.promptTokens, r.completionTokens, r.cachedTokens, r.itlMs.length, r.sessionId], [9, 2, 4, 1, "user-1"]);
      const req = seen.at(-1);
      assert.equal(req.path, kind === "openai-chat" ? "/v1/chat/completions" : "/v1/completions");
      assert.equal(req.session, "user-1");
      assert.deepEqual(
        { ...req.body, [kind === "openai-chat" ? "messages" : "prompt"]: undefined },
        { model: "m", max_tokens: 2, temperature: 0, stream: true, stream_options: { include_usage: true }, user: "user-1", [kind === "openai-chat" ? "messages" : "prompt"]: undefined },
      );
      if (kind === "openai-chat") assert.deepEqual(req.body.messages, messages);
      else assert.equal(req.body.prompt, "hi");
    });
  }

  it("counts an OpenAI error answer as failed with its code", async () => {
    const target = new Target({ kind: "openai-chat", urls: [url], model: "missing", timeoutMs: 5000 });
    const r = await target.send({ index: 0, prompt: "x", messages: [], maxTokens: 1 }, 0, new AbortController().signal);
    await target.close();
    assert.deepEqual([r.outcome, r.status, r.reason], ["failed", 404, "model_not_found"]);
  });
});
