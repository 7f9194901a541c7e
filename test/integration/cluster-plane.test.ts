import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { waitForRoutable } from "../helpers/cluster.js";
import { postJson } from "../helpers/http.js";
import { openPeerNamespace, type PeerNamespace } from "../helpers/peer-namespace.js";
import { startCoordinatorProc, startWorkerProc, type Served } from "../helpers/processes.js";

/**
 * Safe defaults on a network, seen from a peer that is not loopback (a second network namespace):
 * without CLUSTER_TOKEN the cluster plane (heartbeats, worker endpoints, drain, the prefix index)
 * answers loopback peers only, while the client API stays reachable; INSECURE restores the old
 * behaviour with a warning; with CLUSTER_TOKEN a remote peer holding the token is served.
 */
const TOKEN = "cluster-token-0123456789";
const peer = openPeerNamespace();
const skip = typeof peer === "string" ? `no second network namespace: ${peer}` : false;

function beat(id: string, url: string) {
  return {
    worker_id: id, worker_url: url, interval_ms: 200,
    health: { alive: true, active_sessions: 0, kv_cache_bytes: 0, model: { id: "m" } },
  };
}

describe("the cluster plane seen from another machine", { skip }, () => {
  const ns = peer as PeerNamespace;
  let plain: Served;
  let worker: Served;
  let insecure: Served;
  let tokened: Served;
  const remote = (s: Served) => s.url.replace("127.0.0.1", ns.hostIp);
  before(async () => {
    [plain, insecure, tokened] = await Promise.all([
      startCoordinatorProc({}, ["--host", "0.0.0.0"]),
      startCoordinatorProc({ INSECURE: "1" }, ["--host", "0.0.0.0"]),
      startCoordinatorProc({ CLUSTER_TOKEN: TOKEN }, ["--host", "0.0.0.0"]),
    ]);
    worker = await startWorkerProc(plain!.url, { id: "local-w1", args: ["--host", "0.0.0.0"] });
    await waitForRoutable(plain!.url, 1);
  });
  after(async () => {
    await Promise.all([worker, plain, insecure, tokened].map((s) => s?.proc.stop()));
    ns?.close();
  });

  it("refuses a remote heartbeat without CLUSTER_TOKEN with 401 cluster_token_required, and says so at start", async () => {
    const r = await ns.fetch(`${remote(plain)}/coordinator/health/heartbeat`, { method: "POST", body: beat("rogue", `http://${ns.peerIp}:9`) });
    assert.equal(r.status, 401);
    assert.equal(r.body.reason, "cluster_token_required");
    assert.match(r.body.error, /CLUSTER_TOKEN/);
    const workers = (await (await fetch(`${plain.url}/coordinator/health/workers`)).json()) as { workers: { worker_id: string }[] };
    assert.deepEqual(workers.workers.map((w) => w.worker_id), ["local-w1"], "the local worker (loopback) registered; the remote one did not");
    assert.ok(plain.proc.logs.some((l) => l.msg === "cluster_plane.loopback_only"));
    assert.ok(worker.proc.logs.some((l) => l.msg === "cluster_plane.loopback_only"));
  });

  it("refuses remote operator routes (drain, undrain, prefix index, routing log) without any operator secret", async () => {
    for (const [method, path] of [["POST", "/coordinator/workers/local-w1/drain"], ["POST", "/coordinator/workers/local-w1/undrain"],
      ["GET", "/coordinator/health/prefix-index"], ["GET", "/coordinator/health/routing"]] as const) {
      const r = await ns.fetch(`${remote(plain)}${path}`, { method, ...(method === "POST" ? { body: {} } : {}) });
      assert.equal(r.status, 401, path);
    }
    await waitForRoutable(plain.url, 1);
  });

  it("keeps the client API reachable from another machine", async () => {
    const models = await ns.fetch(`${remote(plain)}/v1/models`);
    assert.equal(models.status, 200);
    assert.equal(models.body.data.length, 1);
    const done = await ns.fetch(`${remote(plain)}/coordinator/infer`, { method: "POST", body: { prompt: "Hello", model: "any", max_tokens: 2 } });
    assert.equal(done.status, 200);
    assert.match(String(done.body), /event: end|"reason"/);
  });

  it("a worker without CLUSTER_TOKEN answers only loopback peers", async () => {
    const far = await ns.fetch(`${worker.url.replace("127.0.0.1", ns.hostIp)}/worker/health`);
    assert.equal(far.status, 401);
    assert.equal(far.body.reason, "cluster_token_required");
    const near = await fetch(`${worker.url}/worker/health`);
    assert.equal(near.status, 200);
  });

  it("INSECURE accepts a remote heartbeat again, with a warning at start", async () => {
    const r = await ns.fetch(`${remote(insecure)}/coordinator/health/heartbeat`, { method: "POST", body: beat("remote-w", `http://${ns.peerIp}:9`) });
    assert.equal(r.status, 200);
    assert.ok(insecure.proc.logs.some((l) => l.msg === "cluster_plane.insecure" && l.level === "warn"));
  });

  it("a worker on another machine without CLUSTER_TOKEN is told why it cannot join", async () => {
    const far = await ns.startWorker(remote(plain), "far-w");
    try {
      const line = await far.waitForLog((l) => l.msg === "heartbeat.failed", 10_000, "heartbeat.failed");
      assert.match(String(line.err), /401 \(cluster_token_required: .*CLUSTER_TOKEN/);
    } finally {
      await far.stop();
    }
  });

  it("a worker on another machine with CLUSTER_TOKEN joins and serves requests across the link", async () => {
    const far = await ns.startWorker(remote(tokened), "far-w", { CLUSTER_TOKEN: TOKEN });
    try {
      await waitForRoutable(tokened.url, 1);
      const done = await postJson(`${tokened.url}/coordinator/infer`, { prompt: "Hello", model: "any", max_tokens: 2 });
      assert.equal(done.status, 200);
      assert.equal(done.headers["x-worker-id"], "far-w");
    } finally {
      await far.stop();
    }
  });

  it("with CLUSTER_TOKEN a remote peer is served with the token and refused without it", async () => {
    const without = await ns.fetch(`${remote(tokened)}/coordinator/health/heartbeat`, { method: "POST", body: beat("remote-w", `http://${ns.peerIp}:9`) });
    assert.equal(without.status, 401);
    assert.equal(without.body.reason, "unauthorized");
    const withToken = await ns.fetch(`${remote(tokened)}/coordinator/health/heartbeat`, {
      method: "POST", body: beat("remote-w", `http://${ns.peerIp}:9`), headers: { authorization: `Bearer ${TOKEN}` },
    });
    assert.equal(withToken.status, 200);
    // Loopback is no exemption once a token is set.
    assert.equal((await postJson(`${tokened.url}/coordinator/health/heartbeat`, beat("local-x", "http://127.0.0.1:9"))).status, 401);
  });
});
