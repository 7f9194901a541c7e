import { describe, it } from "node:test";
import assert from "node:assert/strict";
import pino from "pino";
import { createGuard, isLoopback, type AccessSecrets } from "../../src/common/access-guard.js";
import { coordinatorRouteClass } from "../../src/coordinator/routes/route-class.js";
import { ManualClock } from "../../src/common/clock.js";
import { ConfigError, loadOptions } from "../../src/common/config-parse.js";
import { coordinatorOptions, workerOptions } from "../../src/common/config.js";
import type { RouteContext } from "../../src/common/http-server.js";
import type { ServingError } from "../../src/protocol/serving-error.js";
import { ClientCaps } from "../../src/coordinator/admission/client-caps.js";
import { HeartbeatAdmission } from "../../src/coordinator/fleet/heartbeat-admission.js";
import { WorkerTable } from "../../src/coordinator/fleet/worker-table.js";
import { parseHeartbeat } from "../../src/protocol/heartbeat.js";
import { jsonDepthExceeds } from "../../src/protocol/json-depth.js";

/** Exact tables for the parts behind safe defaults on a network (see docs/SECURITY.md). */
const code = (c: string) => (e: ServingError) => e.code === c;

describe("loopback peers", () => {
  const table: [string | undefined, boolean][] = [
    ["127.0.0.1", true], ["127.8.9.10", true], ["::1", true], ["::ffff:127.0.0.1", true],
    ["10.201.0.2", false], ["::ffff:10.0.0.1", false], ["0.0.0.0", false], ["::", false], ["1270.0.0.1", false], [undefined, false],
  ];
  for (const [address, expected] of table) it(`${address} is ${expected ? "" : "not "}loopback`, () => assert.equal(isLoopback(address), expected));
});

describe("the access guard", () => {
  const none: AccessSecrets = { apiKeys: [], adminApiKeys: [], clusterToken: undefined, insecure: false };
  const ctx = (address: string, token?: string) => ({
    req: { socket: { remoteAddress: address }, headers: token === undefined ? {} : { authorization: `Bearer ${token}` } },
    log: pino({ level: "silent" }), clientId: `ip:${address}`, operator: false,
  }) as unknown as RouteContext;
  const run = (s: AccessSecrets, path: string, c: RouteContext) => createGuard(s, coordinatorRouteClass)(c, path);
  const HB = "/coordinator/health/heartbeat";
  const DRAIN = "/coordinator/workers/:id/drain";

  it("without CLUSTER_TOKEN serves the cluster plane to loopback only, naming CLUSTER_TOKEN to others", () => {
    assert.doesNotThrow(() => run(none, HB, ctx("127.0.0.1")));
    assert.throws(() => run(none, HB, ctx("10.201.0.2")), (e: ServingError) => e.code === "cluster_token_required" && /CLUSTER_TOKEN/.test(e.message));
    assert.doesNotThrow(() => run({ ...none, insecure: true }, HB, ctx("10.201.0.2")), "INSECURE restores it");
  });

  it("with CLUSTER_TOKEN wants the token from every peer, loopback included", () => {
    const s = { ...none, clusterToken: "t".repeat(16) };
    assert.throws(() => run(s, HB, ctx("127.0.0.1")), code("unauthorized"));
    assert.doesNotThrow(() => run(s, HB, ctx("10.201.0.2", "t".repeat(16))));
  });

  it("gives operator rights to an admin key, the cluster token, or the local operator when no operator secret is set", () => {
    const s = { ...none, apiKeys: ["client-key-1"], adminApiKeys: ["admin-key-1"] };
    const admin = ctx("10.201.0.2", "admin-key-1");
    run(s, DRAIN, admin);
    assert.equal(admin.operator, true);
    assert.throws(() => run(s, DRAIN, ctx("10.201.0.2", "client-key-1")), code("forbidden"));
    assert.throws(() => run(s, DRAIN, ctx("127.0.0.1")), code("unauthorized"), "loopback is no exemption once operator keys exist");
    const client = ctx("10.201.0.2", "client-key-1");
    run(s, "/coordinator/infer", client);
    assert.equal(client.operator, false);
    const local = ctx("127.0.0.1");
    run(none, "/coordinator/infer", local);
    assert.equal(local.operator, true);
    const remote = ctx("10.201.0.2");
    run(none, "/coordinator/infer", remote);
    assert.equal(remote.operator, false, "the client API is open, operator rights are not");
    assert.throws(() => run(none, DRAIN, ctx("10.201.0.2")), code("unauthorized"));
    // Client keys alone close the operator routes to loopback callers without a key too.
    const clientsOnly = { ...none, apiKeys: ["client-key-1"] };
    assert.throws(() => run(clientsOnly, DRAIN, ctx("127.0.0.1")), code("unauthorized"));
    const keyed = ctx("127.0.0.1", "client-key-1");
    run(clientsOnly, "/coordinator/infer", keyed);
    assert.equal(keyed.operator, false);
    assert.doesNotThrow(() => run(clientsOnly, HB, ctx("127.0.0.1")), "local workers still beat (serve with API_KEYS)");
  });
});

describe("JSON nesting depth on the bytes", () => {
  const table: [string, string, number, number | undefined][] = [
    ["flat", '{"a":1,"b":[1,2]}', 2, undefined],
    ["exactly the limit", "[[[]]]", 3, undefined],
    ["one deeper", "[[[[]]]]", 3, 3],
    ["brackets inside strings do not count", '{"a":"[[[[[[{{{{"}', 1, undefined],
    ["an escaped quote keeps the string open", '{"a":"\\"[[[["}', 1, undefined],
    ["an escaped backslash closes it", '["\\\\",[[1]]]', 2, 7],
    ["objects count as arrays do", '{"a":{"b":{"c":{}}}}', 3, 15],
  ];
  for (const [name, text, max, expected] of table) it(name, () => assert.equal(jsonDepthExceeds(Buffer.from(text), max), expected));
});

describe("heartbeat admission", () => {
  const hb = (id: string, url: string, interval?: number) => parseHeartbeat({
    worker_id: id, worker_url: url, ...(interval !== undefined ? { interval_ms: interval } : {}),
    health: { alive: true, active_sessions: 0, kv_cache_bytes: 0 },
  });
  const setup = (allowlist: string[] = [], maxWorkers = 2) => {
    const clock = new ManualClock();
    return { clock, table: new WorkerTable(clock, 1000), adm: new HeartbeatAdmission({ maxWorkers, maxIntervalMs: 60_000, allowlist }) };
  };

  it("clamps the announced interval to 50 ms .. MAX_HEARTBEAT_INTERVAL_MS", () => {
    const { table, adm } = setup();
    assert.equal(adm.check(hb("a", "http://127.0.0.1:1", 1e12), table, 1000), 60_000);
    assert.equal(adm.check(hb("a", "http://127.0.0.1:1", 1), table, 1000), 50);
    assert.equal(adm.check(hb("a", "http://127.0.0.1:1"), table, 1000), 1000);
  });

  it("caps the number of workers (429 too_many_workers), making room by forgetting an expired one", () => {
    const { clock, table, adm } = setup();
    for (const id of ["a", "b"]) table.upsert({ ...hb(id, `http://127.0.0.1:1`), interval_ms: 1000 });
    assert.throws(() => adm.check(hb("c", "http://127.0.0.1:1"), table, 1000), code("too_many_workers"));
    assert.doesNotThrow(() => adm.check(hb("a", "http://127.0.0.1:1"), table, 1000), "a known worker keeps beating");
    clock.advance(3001);
    table.sweep();
    assert.doesNotThrow(() => adm.check(hb("c", "http://127.0.0.1:1"), table, 1000));
    assert.equal(table.size, 1);
  });

  it("refuses a beat that moves a fresh worker to another URL (409), and accepts it once the worker expired", () => {
    const { clock, table, adm } = setup();
    table.upsert({ ...hb("a", "http://127.0.0.1:1"), interval_ms: 1000 });
    assert.throws(() => adm.check(hb("a", "http://10.0.0.9:1"), table, 1000), code("worker_url_conflict"));
    clock.advance(3001);
    assert.doesNotThrow(() => adm.check(hb("a", "http://10.0.0.9:1"), table, 1000));
  });

  it("keeps worker URLs within WORKER_ALLOWLIST (403)", () => {
    const { table, adm } = setup(["10.201.0.0/24", "::1", "gpu-1.internal"]);
    for (const ok of ["http://10.201.0.7:3001", "http://[::1]:3001", "http://GPU-1.internal:3001"]) assert.doesNotThrow(() => adm.check(hb("a" + ok.length, ok), table, 1000), ok);
    for (const bad of ["http://10.201.1.7:3001", "http://169.254.169.254/", "http://gpu-2.internal:1"]) {
      assert.throws(() => adm.check(hb("x", bad), table, 1000), code("forbidden"), bad);
    }
  });

  it("refuses too many or too long model aliases instead of cutting them", () => {
    const base = { worker_id: "a", worker_url: "http://127.0.0.1:1", health: { alive: true, active_sessions: 0, kv_cache_bytes: 0, model: { id: "m", aliases: [] as string[] } } };
    const withAliases = (aliases: string[]) => ({ ...base, health: { ...base.health, model: { id: "m", aliases } } });
    assert.equal(parseHeartbeat(withAliases(Array.from({ length: 32 }, (_, i) => `n${i}`))).health.model.aliases.length, 32);
    assert.throws(() => parseHeartbeat(withAliases(Array.from({ length: 33 }, (_, i) => `n${i}`))), code("invalid_field"));
    assert.throws(() => parseHeartbeat(withAliases(["x".repeat(257)])), code("invalid_field"));
    assert.throws(() => parseHeartbeat({ ...base, health: { ...base.health, model: { id: "x".repeat(257) } } }), code("invalid_field"));
  });
});

describe("per-client caps", () => {
  it("caps a client's requests in flight, others unaffected, and releases each place once", () => {
    const caps = new ClientCaps({ maxStreams: 2, maxQueued: 0 });
    const a = caps.enterStream("k1");
    caps.enterStream("k1");
    assert.throws(() => caps.enterStream("k1"), code("too_many_streams"));
    assert.doesNotThrow(() => caps.enterStream("k2"));
    a.release();
    a.release();
    assert.equal(caps.streamsOf("k1"), 1);
    assert.doesNotThrow(() => caps.enterQueue("k1"), "0 turns a cap off");
  });
});

describe("configuration errors and secrets", () => {
  const cases: [string, typeof coordinatorOptions | typeof workerOptions, Record<string, string>, string][] = [
    ["API_KEYS", coordinatorOptions, { API_KEYS: "good-key-123456,short" }, "good-key-123456"],
    ["ADMIN_API_KEYS", coordinatorOptions, { ADMIN_API_KEYS: "admin-secret-xyz,tiny" }, "admin-secret-xyz"],
    ["CLUSTER_TOKEN", coordinatorOptions, { CLUSTER_TOKEN: "too-short-tok" }, "too-short-tok"],
  ];
  for (const [name, specs, env, secret] of cases) {
    it(`names ${name} and never prints its value`, () => {
      assert.throws(() => loadOptions(specs, [], env), (e: unknown) => e instanceof ConfigError && e.message.includes(name) && !e.message.includes(secret) && !e.message.includes("short") && !e.message.includes("tiny"));
    });
  }
});
