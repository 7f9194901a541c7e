import { describe, it } from "node:test";
import assert from "node:assert/strict";
import pino from "pino";
import { ManualClock } from "../../src/common/clock.js";
import { createRng } from "../../src/common/rng.js";
import type { ServingError } from "../../src/protocol/serving-error.js";
import { ManualTimers } from "../../src/common/timers.js";
import { loadOptions } from "../../src/common/config-parse.js";
import { coordinatorOptions } from "../../src/common/config.js";
import { AdmissionGate, type Admitted } from "../../src/coordinator/admission/admission-gate.js";
import { AdmissionQueue } from "../../src/coordinator/admission/admission-queue.js";
import { enterAdmission } from "../../src/coordinator/admission/admission-entry.js";
import { ClientCaps } from "../../src/coordinator/admission/client-caps.js";
import { seedProfile } from "../../src/coordinator/scheduler/profiles.js";
import { schedule } from "../../src/coordinator/scheduler/schedule.js";
import { SessionTracker } from "../../src/coordinator/fleet/session-tracker.js";
import { WorkerTable } from "../../src/coordinator/fleet/worker-table.js";
import { parseHeartbeat } from "../../src/protocol/heartbeat.js";
import { priorityOf } from "../../src/coordinator/routes/request-priority.js";
import type { RouteContext } from "../../src/common/http-server.js";

/** A fleet of one worker holding one session, a tracker, a queue and the gate over them. */
function fleet(queueSize = 4, maxQueuedPerClient = 0) {
  const clock = new ManualClock();
  const timers = new ManualTimers(clock);
  const table = new WorkerTable(clock, 1000);
  table.upsert(parseHeartbeat({
    worker_id: "w1", worker_url: "http://127.0.0.1:1", timestamp: 0, interval_ms: 1000,
    health: { alive: true, active_sessions: 0, kv_cache_bytes: 0, model: { id: "m", context_size: 2048, kv_bytes_per_token: 1 }, limits: { max_sessions: 1, max_session_kv_bytes: 1e6, max_kv_bytes: 1e9 }, slots: { total: 1, busy: 0 } },
  }));
  const tracker = new SessionTracker();
  const queue = new AdmissionQueue({ maxSize: queueSize, timeoutMs: 5000, clock, timers });
  tracker.onFreed = () => queue.kick();
  const config = loadOptions(coordinatorOptions, [], {}).config;
  const caps = new ClientCaps({ maxStreams: 0, maxQueued: maxQueuedPerClient });
  const gate = new AdmissionGate({ config, table, tracker, queue, clock, caps });
  const log = pino({ level: "silent" });
  const decide = () =>
    schedule(seedProfile, table.list().map((e) => ({
      id: e.id, url: e.url, model: "m", fresh: table.isFresh(e), healthy: true, draining: false, sessions: tracker.load(e.id).sessions,
      maxSessions: 1, kvBytes: 0, maxKvBytes: 1e9, maxSessionKvBytes: 1e6, kvBytesPerToken: 1, contextSize: 2048, waiting: 0, slotsTotal: 1,
    })), { model: "m", tokens: 10, exclude: new Set() }, { nowMs: clock.now(), rng: createRng(1) });
  const enter = (signal = new AbortController().signal, clientId = "key:a") => gate.enter({ model: "m", tokens: 10, priority: 0, clientId, signal, log, decide });
  const entry = (signal = new AbortController().signal) => enterAdmission(gate, { model: "m", tokens: 10, priority: 0, clientId: "key:a", signal, log, decide });
  return { clock, timers, table, tracker, queue, enter, caps, entry, gate };
}

const settle = () => new Promise<void>((r) => setImmediate(r));

describe("the admission gate", () => {
  it("admits synchronously when the queue is empty and capacity is free", () => {
    const f = fleet();
    const a = f.enter();
    assert.ok(!(a instanceof Promise));
    assert.equal(a.decision.pick.candidate.id, "w1");
    assert.equal(a.ticket, undefined);
    assert.equal(a.queuedMs, 0);
  });

  it("queues at capacity and admits when a session ends, still first in line until it leaves", async () => {
    const f = fleet();
    const held = f.tracker.open("r0", "w1", 10);
    const p = f.enter();
    assert.ok(p instanceof Promise);
    let admitted: Admitted | undefined;
    void p.then((a) => (admitted = a));
    await settle();
    assert.equal(f.queue.size, 1);
    f.clock.advance(250);
    held.release();
    await settle();
    assert.ok(admitted);
    assert.equal(admitted.queuedMs, 250);
    assert.ok(admitted.ticket?.isFirst, "it holds its place until it has claimed");
    // Claimed, then it leaves: a newcomer now finds the capacity taken and waits behind nobody.
    f.tracker.open("r1", "w1", 10);
    admitted.ticket.leave();
    assert.equal(f.queue.size, 0);
    assert.equal(f.queue.snapshot().drain_per_s, 0, "one departure is not a rate yet");
    assert.ok(f.enter() instanceof Promise);
  });

  it("queues a newcomer behind a waiter even when capacity looks free", async () => {
    const f = fleet();
    const held = f.tracker.open("r0", "w1", 10);
    void f.enter();
    await settle();
    held.release(); // wakes the waiter, whose turn has not run yet
    assert.ok(f.enter() instanceof Promise);
    assert.equal(f.queue.size, 2);
  });

  it("refuses at once what waiting cannot fix, and everything when the queue is off", () => {
    const f = fleet();
    f.clock.advance(5000);
    f.table.sweep();
    assert.throws(() => f.enter(), (e: ServingError) => e.code === "no_workers");
    const off = fleet(0);
    off.tracker.open("r0", "w1", 10);
    assert.throws(() => off.enter(), (e: ServingError) => e.code === "system_sessions_full");
  });

  it("answers queue_timeout after the timeout, and queue_full beyond the queue's size", async () => {
    const f = fleet(1);
    f.tracker.open("r0", "w1", 10);
    const p = f.enter() as Promise<Admitted>;
    await assert.rejects(f.enter() as Promise<Admitted>, (e: ServingError) => e.code === "queue_full" && e.retryAfterS === 5);
    f.timers.advance(5000);
    await assert.rejects(p, (e: ServingError) => e.code === "queue_timeout");
    assert.equal(f.queue.size, 0);
  });

  it("lets a waiter refused for another reason go without counting it as drained", async () => {
    const f = fleet();
    f.tracker.open("r0", "w1", 10);
    const p = f.enter() as Promise<Admitted>;
    await settle();
    f.clock.advance(5000);
    f.table.sweep(); // the only worker left
    f.queue.kick();
    await assert.rejects(p, (e: ServingError) => e.code === "no_workers");
    assert.equal(f.queue.size, 0);
  });
});

describe("the per-client cap on queued requests", () => {
  it("refuses a client's third waiter with too_many_queued while another client still queues, and frees places as waits end", async () => {
    const f = fleet(8, 2);
    f.tracker.open("r0", "w1", 10);
    const a = new AbortController();
    const first = f.enter(a.signal) as Promise<Admitted>;
    const second = f.enter() as Promise<Admitted>;
    await assert.rejects(f.enter() as Promise<Admitted>, (e: ServingError) => e.code === "too_many_queued");
    const other = f.enter(undefined, "key:b");
    assert.ok(other instanceof Promise);
    assert.equal(f.caps.queuedOf("key:a"), 2);
    a.abort();
    await assert.rejects(first);
    assert.equal(f.caps.queuedOf("key:a"), 1, "an abandoned wait gives its place back");
    const third = f.enter();
    assert.ok(third instanceof Promise);
    void second.catch(() => {});
    void third.catch(() => {});
    void other.catch(() => {});
  });
});

describe("a request's priority", () => {
  const ctx = (v?: string, operator = true) => ({ operator, req: { headers: v === undefined ? {} : { "x-priority": v } } }) as unknown as RouteContext;
  it("refuses a negative priority from a client that is not an operator (403), in the body or the header", () => {
    assert.throws(() => priorityOf(ctx(undefined, false), -1), (e: ServingError) => e.code === "forbidden" && e.param === "priority");
    assert.throws(() => priorityOf(ctx("-2", false), undefined), (e: ServingError) => e.code === "forbidden" && e.param === "x-priority");
    assert.equal(priorityOf(ctx("3", false), undefined), 3);
    assert.equal(priorityOf(ctx(undefined, true), -1), -1);
  });

  const table: [string, string | undefined, number | undefined, number | string][] = [
    ["none: 0", undefined, undefined, 0],
    ["the header", "-3", undefined, -3],
    ["the body over the header", "5", 2, 2],
    ["a header with a plus sign", "+7", undefined, 7],
    ["a fractional header", "1.5", undefined, "invalid_field"],
    ["a header out of range", "99999999", undefined, "invalid_field"],
    ["a word", "high", undefined, "invalid_field"],
  ];
  for (const [name, header, body, expected] of table) {
    it(name, () => {
      if (typeof expected === "number") assert.equal(priorityOf(ctx(header), body), expected);
      else assert.throws(() => priorityOf(ctx(header), body), (e: ServingError) => e.code === expected && e.param === "x-priority");
    });
  }
});

describe("the one admission entry", () => {
  it("answers admitted at once, with nothing queued and a claimed() that may be called twice", async () => {
    const f = fleet();
    const a = await f.entry();
    assert.equal(a.kind, "admitted");
    if (a.kind !== "admitted") return;
    assert.equal(a.queuedMs, 0);
    assert.equal(a.decision.pick.candidate.id, "w1");
    a.claimed();
    a.claimed();
    assert.equal(f.queue.size, 0);
  });

  it("answers admitted after a wait, and the ticket leaves the line only when the request says it claimed", async () => {
    const f = fleet();
    const held = f.tracker.open("r0", "w1", 10);
    const p = f.entry();
    await settle();
    f.clock.advance(40);
    held.release();
    const a = await p;
    assert.equal(a.kind, "admitted");
    if (a.kind !== "admitted") return;
    assert.equal(a.queuedMs, 40);
    assert.equal(f.queue.size, 1, "still first in line until claimed");
    a.claimed();
    assert.equal(f.queue.size, 0);
  });

  it("answers rejected with the reason (the queue full), and timed_out after the queue's timeout", async () => {
    const f = fleet(1);
    f.tracker.open("r0", "w1", 10);
    const waiting = f.entry();
    const full = await f.entry();
    assert.equal(full.kind, "rejected");
    assert.equal(full.kind === "rejected" ? full.reason.code : "", "queue_full");
    f.timers.advance(5000);
    const late = await waiting;
    assert.equal(late.kind, "timed_out");
    assert.equal(late.kind === "timed_out" ? late.reason.code : "", "queue_timeout");
  });
});

describe("the refusal before the body", () => {
  // A fleet of one worker holding one session: [queue size, per-client queue cap, sessions held, queued] → the answer.
  const cases: [string, number, number, number, number, string | undefined][] = [
    ["room for a session: read the request", 4, 0, 0, 0, undefined],
    ["full, the queue off: 503 system_sessions_full", 0, 0, 1, 0, "system_sessions_full"],
    ["full, room in the queue: read it (it may wait)", 4, 0, 1, 0, undefined],
    ["full, the queue full: 429 queue_full", 1, 0, 1, 1, "queue_full"],
    ["full, the queue full, a per-client queue cap: read it (the cap may answer first)", 1, 1, 1, 1, undefined],
  ];
  for (const [name, queueSize, perClient, held, queued, want] of cases) {
    it(name, async () => {
      const f = fleet(queueSize, perClient);
      for (let i = 0; i < held; i++) f.tracker.open(`r${i}`, "w1", 10);
      for (let i = 0; i < queued; i++) void (f.enter(new AbortController().signal, `key:q${i}`) as Promise<Admitted>).catch(() => undefined);
      await settle();
      assert.equal(f.queue.size, queued);
      assert.equal(f.gate.refusalBeforeBody()?.code, want);
    });
  }

  it("leaves a fleet with no routable worker to the full path (the answer depends on the model)", () => {
    const f = fleet(0);
    f.tracker.open("r0", "w1", 10);
    f.clock.advance(5000);
    f.table.sweep();
    assert.equal(f.gate.refusalBeforeBody(), undefined);
  });
});

