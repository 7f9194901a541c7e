import assert from "node:assert/strict";
import type { ScenarioOutcome } from "./chaos-outcome.js";
import { burst, burstQueued, randomDisconnects, restartCoordinator, slowReader } from "./fleet-scenarios.js";
import type { ScenarioOptions } from "./scenario-kit.js";
import { killBeforePrefill, killMidDecode, killMidPrefill, restartSameId, stopAndResume } from "./worker-fault-scenarios.js";
import { modelKillMidDecode, modelKillMidPrefill, modelSkipReason } from "./model-scenarios.js";

/**
 * Every chaos scenario with what it must show. The invariants hold for all of them: no stream hung
 * (each ended within its bound) and nothing left held on the coordinator or any worker afterwards.
 * The checks are about outcomes, never about speed: the machine is shared.
 */
export interface ChaosScenario {
  key: string;
  /** A test name (a sentence). */
  name: string;
  run(o: ScenarioOptions): Promise<ScenarioOutcome>;
  check(o: ScenarioOutcome): void;
  /** Why it cannot run here (a missing model), or undefined. */
  skip?: string;
}

export function assertInvariants(o: ScenarioOutcome): void {
  assert.equal(o.hung, 0, `${o.key}: hung streams`);
  assert.deepEqual({ key: o.key, leaked: o.leaks.total, ...o.leaks }, { key: o.key, leaked: 0, coordinator: 0, workers: zeroes(o.leaks.workers), total: 0 }, `${o.key}: leaked sessions`);
}

const zeroes = (w: Record<string, number>) => Object.fromEntries(Object.keys(w).map((k) => [k, 0]));

/** Every stream ended complete: the fault was invisible to clients. */
function allComplete(o: ScenarioOutcome): void {
  assert.equal(o.completed, o.streams, `${o.key}: every stream completes (${o.errorEvents} error events, ${o.rejected} rejected, ${o.cut} cut)`);
}

export const CHAOS_SCENARIOS: ChaosScenario[] = [
  {
    key: "kill-before-prefill", name: "a worker killed between heartbeats is retried around: every stream completes", run: killBeforePrefill,
    check: (o) => {
      allComplete(o);
      assert.ok(o.retried >= 1, "a request picked for the dead worker was retried");
    },
  },
  {
    key: "kill-mid-prefill", name: "a worker killed mid-prefill: its prefills are retried elsewhere and every stream completes", run: killMidPrefill,
    check: (o) => {
      allComplete(o);
      assert.ok(o.retried >= 1, "the killed prefills were retried");
    },
  },
  {
    key: "kill-mid-decode", name: "a worker killed mid-decode: its streams fail over and every stream completes", run: killMidDecode,
    check: (o) => {
      allComplete(o);
      assert.ok(o.failedOver >= 2, "the victim's streams failed over");
    },
  },
  {
    key: "kill-mid-decode-model", name: "a stories260K worker killed mid-decode: its streams fail over and every stream completes", run: modelKillMidDecode,
    skip: modelSkipReason,
    check: (o) => {
      allComplete(o);
      assert.ok(o.failedOver >= 1, "the victim's streams failed over");
    },
  },
  {
    key: "kill-mid-prefill-model", name: "a stories260K worker killed while prefills queue for its slots: every stream completes", run: modelKillMidPrefill,
    skip: modelSkipReason,
    check: allComplete,
  },
  {
    key: "sigstop", name: "a frozen worker's streams move after the stall timeout, and once resumed it frees its sessions and serves again", run: stopAndResume,
    check: (o) => {
      allComplete(o);
      assert.ok(o.failedOver >= 2, "the frozen worker's streams failed over");
    },
  },
  {
    key: "restart-worker", name: "a worker restarted under the same id is followed to its new address and serves again", run: restartSameId,
    check: (o) => {
      allComplete(o);
      assert.ok(o.failedOver >= 2, "the killed worker's streams failed over");
      assert.ok(Number(o.facts.onRestarted) >= 1, "the restarted worker serves new streams");
    },
  },
  {
    key: "restart-coordinator", name: "a coordinator killed and restarted: workers free the cut sessions, re-register, and new streams complete", run: restartCoordinator,
    check: (o) => {
      assert.equal(o.errorEvents + o.rejected, 0);
      assert.equal(o.facts.samePids, true, "no worker restarted");
      assert.equal(o.facts.afterCompleted, o.facts.afterStreams, "every stream after the restart completes");
    },
  },
  {
    key: "slow-reader", name: "a client reading one byte a second is dropped at the write deadline and the others complete", run: slowReader,
    check: (o) => {
      assert.equal(o.facts.slowTermination, "write_timeout");
      assert.equal(o.cut, 1, "only the slow client is cut off");
      assert.equal(o.completed, o.streams - 1);
    },
  },
  {
    key: "burst", name: "a burst at five times capacity without a queue is refused at once with 503 and the admitted streams complete", run: burst,
    check: (o) => {
      assert.equal(o.completed + o.rejected, o.streams, "each stream completes or is refused");
      assert.equal(o.facts.statuses, "503", "refusals are 503");
      // The fleet is idle when the burst comes (after the quiet run): all of its capacity serves it.
      assert.ok(o.completed >= Number(o.facts.capacity), `${o.completed} admitted of a capacity of ${String(o.facts.capacity)}`);
    },
  },
  {
    key: "burst-queue", name: "a burst at five times capacity fills the admission queue, is refused beyond it with 429, and the queued streams are served", run: burstQueued,
    check: (o) => {
      assert.equal(o.completed + o.rejected, o.streams, "each stream completes or is refused");
      assert.equal(o.facts.statuses, "429", "refusals beyond the queue are 429");
      assert.ok(o.completed > Number(o.facts.capacity), `${o.completed} served: the capacity and queued requests`);
    },
  },
  {
    key: "disconnects", name: "clients hanging up at random free their sessions and the others complete", run: randomDisconnects,
    check: (o) => {
      assert.equal(o.completed + o.clientAborts, o.streams, "each stream completes or was hung up by its client");
      assert.equal(o.errorEvents + o.cut + o.rejected, 0);
    },
  },
];

export function scenario(key: string): ChaosScenario {
  const s = CHAOS_SCENARIOS.find((x) => x.key === key);
  if (s === undefined) throw new Error(`no chaos scenario ${key}`);
  return s;
}
