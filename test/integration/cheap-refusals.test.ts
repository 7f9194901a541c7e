import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { request as httpRequest, type ClientRequest } from "node:http";
import { waitForRoutable } from "../helpers/cluster.js";
import { postJson, waitFor } from "../helpers/http.js";
import { startCoordinatorProc, startWorkerProc, type Served } from "../helpers/processes.js";

/**
 * Cheap refusals before expensive work: a body nested too deep is refused from its bytes, before
 * JSON.parse; a client over its request rate or its cap on requests in flight is refused before
 * its body is even read (the test withholds the body: the answer comes anyway).
 */
const KEY = "sk-cheap-0123456789abcdef";
const OTHER = "sk-other-0123456789abcdef";

/** A request whose headers go out at once and whose body is withheld (content-length promised). */
function withheldBody(url: string, key: string): { req: ClientRequest; answer: Promise<{ status: number; body: any }> } {
  const u = new URL(url);
  const req = httpRequest({
    host: u.hostname, port: u.port, path: u.pathname, method: "POST", agent: false,
    headers: { "content-type": "application/json", "content-length": "1000", authorization: `Bearer ${key}` },
  });
  const answer = new Promise<{ status: number; body: any }>((resolve, reject) => {
    req.on("response", (res) => {
      let text = "";
      res.setEncoding("utf8");
      res.on("data", (c) => (text += c));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body: text.startsWith("{") ? JSON.parse(text) : text }));
    });
    req.on("error", reject);
  });
  req.flushHeaders();
  return { req, answer };
}

describe("cheap refusals before expensive work", () => {
  let c: Served;
  let w: Served;
  before(async () => {
    c = await startCoordinatorProc({ API_KEYS: `${KEY},${OTHER}`, MAX_STREAMS_PER_KEY: "1", RATE_LIMIT_RPM: "3", MAX_BODY_BYTES: "2MiB" });
    w = await startWorkerProc(c.url, { id: "w1" });
    await waitForRoutable(c.url, 1);
  });
  after(async () => Promise.all([w?.proc.stop(), c?.proc.stop()]));

  it("refuses a 1 MiB body of nested arrays from its bytes with 400 json_too_deep", async () => {
    const body = "[".repeat(512 * 1024) + "]".repeat(512 * 1024);
    const t0 = performance.now();
    const res = await fetch(`${c.url}/v1/chat/completions`, {
      method: "POST", body, headers: { "content-type": "application/json", authorization: `Bearer ${OTHER}` },
    });
    const ms = performance.now() - t0;
    const json = (await res.json()) as { error: { code: string } };
    assert.equal(res.status, 400);
    assert.equal(json.error.code, "json_too_deep");
    console.log(`# 1 MiB of nested arrays -> ${res.status} ${json.error.code} in ${ms.toFixed(1)} ms`);
    // The coordinator still answers at once.
    assert.equal((await fetch(`${c.url}/coordinator/health`)).status, 200);
  });

  it("refuses a client's second request in flight with 429 too_many_streams before reading its body, and lets it in once the first ended", async () => {
    const first = withheldBody(`${c.url}/coordinator/infer`, KEY);
    await waitFor(async () => {
      const r = withheldBody(`${c.url}/coordinator/infer`, KEY);
      const a = await r.answer;
      r.req.destroy();
      return a.status === 429 ? a : undefined;
    }, "the second request refused while the first one's body is withheld", 5000).then((a) => {
      assert.equal(a.body.reason, "too_many_streams");
    });
    // Another key is not affected.
    const other = await postJson(`${c.url}/coordinator/infer`, { prompt: "Hi", model: "any", max_tokens: 1 }, { authorization: `Bearer ${OTHER}` });
    assert.equal(other.status, 200);
    first.req.destroy();
    await first.answer.catch(() => undefined);
    // The coordinator learns of the closed connection a moment later; refusals by the cap cost no rate.
    const again = await waitFor(async () => {
      const r = await postJson(`${c.url}/coordinator/infer`, { prompt: "Hi", model: "any", max_tokens: 1 }, { authorization: `Bearer ${KEY}` });
      return r.status === 429 && r.body.reason === "too_many_streams" ? undefined : r;
    }, "the place given back when the first request's connection closed", 5000);
    assert.equal(again.status, 200);
  });

  it("refuses a client over its request rate with 429 before reading its body", async () => {
    // OTHER spent 2 of its 3 requests a minute above: one more passes, the next is refused unread.
    const ok = await postJson(`${c.url}/coordinator/infer`, { prompt: "Hi", model: "any", max_tokens: 1 }, { authorization: `Bearer ${OTHER}` });
    assert.equal(ok.status, 200);
    const r = withheldBody(`${c.url}/coordinator/infer`, OTHER);
    const a = await r.answer;
    r.req.destroy();
    assert.equal(a.status, 429);
    assert.equal(a.body.reason, "rate_limited");
  });
});
