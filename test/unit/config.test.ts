import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { ConfigError, loadOptions, parseBytes } from "../../src/common/config-parse.js";
import { coordinatorOptions, serveOptions, workerOptions } from "../../src/common/config.js";

describe("configuration", () => {
  it("has the seed's defaults", () => {
    const { config: c } = loadOptions(coordinatorOptions, [], {});
    assert.equal(c.port, 1337);
    assert.equal(c.host, "0.0.0.0");
    assert.equal(c.systemMaxSessions, 1000);
    assert.equal(c.systemMaxKvBytes, 64 * 1024 ** 3);
    assert.equal(c.heartbeatIntervalMs, 10_000);
    assert.equal(c.relayBufferTokens, 64);
    assert.equal(c.clientWriteTimeoutMs, 5000);
    assert.equal(c.prefillRetries, 2);
    const { config: w } = loadOptions(workerOptions, [], {});
    assert.equal(w.workerPort, 3001);
    assert.equal(w.workerMaxSessions, 100);
    assert.equal(w.workerMaxSessionKvBytes, 512 * 1024 ** 2);
    assert.equal(w.workerMaxKvBytes, 8 * 1024 ** 3);
    assert.equal(w.sessionTtlMs, 300_000);
    assert.equal(w.channelTokens, 32);
    assert.deepEqual(w.coordinatorUrls, ["http://127.0.0.1:1337"]);
    assert.equal(w.threads, "auto");
    const { config: s } = loadOptions(serveOptions, [], {});
    assert.equal(s.workers, 2);
    assert.equal(s.port, 1337);
  });

  it("takes environment variables, and flags over them", () => {
    const env = { PORT: "8080", SYSTEM_MAX_KV_BYTES: "2GiB", COORDINATOR_URL: "http://a:1, http://b:2/" };
    const { config: c } = loadOptions(coordinatorOptions, ["--port", "9090"], env);
    assert.equal(c.port, 9090);
    assert.equal(c.systemMaxKvBytes, 2 * 1024 ** 3);
    const { config: w } = loadOptions(workerOptions, ["--model=/m.gguf", "--threads", "2", "--force-threads"], env);
    assert.deepEqual(w.coordinatorUrls, ["http://a:1", "http://b:2"]);
    assert.equal(w.modelPath, "/m.gguf");
    assert.equal(w.threads, 2);
    assert.equal(w.forceThreads, true);
  });

  it("returns a frozen object", () => {
    const { config } = loadOptions(coordinatorOptions, [], {});
    assert.ok(Object.isFrozen(config));
  });

  const bad: [Record<string, string>, string[], RegExp][] = [
    [{ PORT: "abc" }, [], /invalid value for PORT: "abc" \(expected an integer from 0 to 65535\)/],
    [{ PORT: "70000" }, [], /PORT: "70000"/],
    [{}, ["--port", "-1"], /--port: "-1"/],
    [{ SYSTEM_MAX_SESSIONS: "0" }, [], /SYSTEM_MAX_SESSIONS: "0"/],
    [{ SYSTEM_MAX_KV_BYTES: "lots" }, [], /SYSTEM_MAX_KV_BYTES: "lots" \(expected bytes/],
    [{ HEARTBEAT_INTERVAL_MS: "1.5" }, [], /HEARTBEAT_INTERVAL_MS/],
    [{ LOG_LEVEL: "loud" }, [], /LOG_LEVEL: "loud" \(expected one of trace, debug/],
    [{}, ["--no-such-flag"], /unknown option --no-such-flag/],
    [{}, ["--port"], /option --port needs a value/],
  ];
  for (const [env, argv, re] of bad) {
    it(`refuses ${JSON.stringify(env)} ${argv.join(" ")} naming the variable and the value`, () => {
      assert.throws(() => loadOptions(coordinatorOptions, argv, env), (err: unknown) => err instanceof ConfigError && re.test(err.message));
    });
  }

  it("reads flags as --flag value and --flag=value, a boolean flag bare or with a value, and everything after -- as positionals", () => {
    const { config, positionals } = loadOptions(serveOptions, ["a", "--port=7", "--workers", "3", "-x", "--force-threads", "b", "--", "--port", "9"], {});
    assert.equal(config.port, 7);
    assert.equal(config.workers, 3);
    assert.equal(config.forceThreads, true);
    assert.deepEqual(positionals, ["a", "-x", "b", "--port", "9"]);
    assert.equal(loadOptions(serveOptions, ["--force-threads=false"], {}).config.forceThreads, false);
  });

  it("refuses bad worker values", () => {
    assert.throws(() => loadOptions(workerOptions, [], { COORDINATOR_URL: "ftp://x" }), /COORDINATOR_URL/);
    assert.throws(() => loadOptions(workerOptions, [], { WORKER_URL: "not a url" }), /WORKER_URL/);
    assert.throws(() => loadOptions(workerOptions, [], { PARALLEL: "0.5" }), /PARALLEL/);
    assert.throws(() => loadOptions(workerOptions, [], { WORKER_MAX_SESSION_KV_BYTES: "-5" }), /WORKER_MAX_SESSION_KV_BYTES/);
    assert.throws(() => loadOptions(workerOptions, [], { ENGINE: "magic" }), /ENGINE/);
  });

  it("parses byte sizes with units", () => {
    const cases: [string, number][] = [["512", 512], ["512MiB", 512 * 1024 ** 2], ["8GiB", 8 * 1024 ** 3], ["1.5GB", 1.5e9], ["64kib", 65536], ["3 MB", 3e6]];
    for (const [raw, n] of cases) assert.equal(parseBytes(raw), n, raw);
    for (const raw of ["", "x", "5 parsecs", "-1", "0"]) assert.throws(() => parseBytes(raw), raw);
  });
});
