import { waitFor } from "../http.js";
import { ChaosFleet } from "./chaos-fleet.js";
import { SEED_ROWS, summarize, type ScenarioOutcome } from "./chaos-outcome.js";
import { launchWave } from "./chaos-stream.js";
import { SIM_ARGS, perWorker, quietRun, specs, waitDecodingOn, type ScenarioOptions } from "./scenario-kit.js";

/**
 * Chaos scenarios where a worker process fails under 20+ concurrent streams over three sim workers:
 * killed (-9) before, during prefill and mid-decode, frozen (SIGSTOP) and resumed, and restarted
 * under the same id. The victim is always w1; w2 and w3 carry the rest.
 */
const VICTIM = "w1";
const MAX_TOKENS = 150;

function fleetOf(victimArgs: string[] = [], victimEnv: Record<string, string> = {}): Promise<ChaosFleet> {
  return ChaosFleet.start([
    { id: VICTIM, args: [...SIM_ARGS, ...victimArgs], env: victimEnv },
    { id: "w2", args: SIM_ARGS },
    { id: "w3", args: SIM_ARGS },
  ]);
}

/** Killed while idle, with heartbeats so sparse that the coordinator still lists it: requests picked for it are retried. */
export async function killBeforePrefill(o: ScenarioOptions): Promise<ScenarioOutcome> {
  const key = "kill-before-prefill";
  // A 10 s heartbeat period keeps the dead worker fresh in the table for 30 s.
  const fleet = await fleetOf([], { HEARTBEAT_INTERVAL_MS: "10000" });
  try {
    const quiet = await quietRun(fleet, o, specs(`${key}-quiet`, o.streams, { maxTokens: MAX_TOKENS }));
    await fleet.killWorker(VICTIM);
    const wave = launchWave(fleet.url, specs(key, o.streams, { maxTokens: MAX_TOKENS }));
    const records = await wave.done;
    const row = await fleet.tableRow(VICTIM);
    return summarize({
      key, title: "kill -9 a worker between heartbeats (still listed), then send", seedFailure: SEED_ROWS.pickedThenDead,
      records, quiet, failedOver: fleet.failedOver(), leaks: await fleet.leaks(), unaffected: () => true,
      notes: [`dead worker's breaker afterwards: ${row?.breaker ?? "gone"}`, `served by ${JSON.stringify(perWorker(records))}`],
    });
  } finally {
    await fleet.stop();
  }
}

/** Killed while its prefills run (3 s each on the victim, so the kill lands inside them). */
export async function killMidPrefill(o: ScenarioOptions): Promise<ScenarioOutcome> {
  const key = "kill-mid-prefill";
  const fleet = await fleetOf(["--sim-prefill-base-ms", "3000"]);
  try {
    const quiet = await quietRun(fleet, o, specs(`${key}-quiet`, o.streams, { maxTokens: MAX_TOKENS }));
    const wave = launchWave(fleet.url, specs(key, o.streams, { maxTokens: MAX_TOKENS }));
    const victim = fleet.worker(VICTIM).proc;
    const started = () => victim.logs.filter((l) => l.msg === "session.start" && String(l.request_id).startsWith(`${key}-`) && !String(l.request_id).includes("quiet"));
    await waitFor(() => started().length >= 3, "prefills running on the victim", 60_000, 10);
    const inFlight = started().length;
    const streamingFromVictim = wave.records.filter((r) => r.workerId === VICTIM).length;
    await fleet.killWorker(VICTIM);
    const records = await wave.done;
    return summarize({
      key, title: "kill -9 a worker mid-prefill", seedFailure: SEED_ROWS.midPrefill,
      records, quiet, failedOver: fleet.failedOver(), leaks: await fleet.leaks(), unaffected: () => true,
      notes: [`killed once ${inFlight} of its prefills (3 s each) were running and ${streamingFromVictim} of its streams had started`],
    });
  } finally {
    await fleet.stop();
  }
}

/** Killed while its streams decode: they continue on the other workers. */
export async function killMidDecode(o: ScenarioOptions): Promise<ScenarioOutcome> {
  const key = "kill-mid-decode";
  const fleet = await fleetOf();
  try {
    const quiet = await quietRun(fleet, o, specs(`${key}-quiet`, o.streams, { maxTokens: MAX_TOKENS }));
    const wave = launchWave(fleet.url, specs(key, o.streams, { maxTokens: MAX_TOKENS }));
    await waitDecodingOn(wave, VICTIM, 2, 5);
    const onVictim = wave.records.filter((r) => r.workerId === VICTIM).length;
    await fleet.killWorker(VICTIM);
    const records = await wave.done;
    return summarize({
      key, title: "kill -9 a worker mid-decode", seedFailure: SEED_ROWS.midDecode,
      records, quiet, failedOver: fleet.failedOver(), leaks: await fleet.leaks(), unaffected: (r) => r.workerId !== VICTIM,
      notes: [`${onVictim} streams were on ${VICTIM}`],
    });
  } finally {
    await fleet.stop();
  }
}

/**
 * Frozen (SIGSTOP) mid-decode: its streams stall and move after the stall timeout; requests sent
 * right after the freeze may still be picked for it and wait out the prefill timeout before their
 * retry. Resumed (SIGCONT) afterwards: it frees its sessions, rejoins, and serves again.
 */
export async function stopAndResume(o: ScenarioOptions): Promise<ScenarioOutcome> {
  const key = "sigstop";
  const fleet = await fleetOf();
  const victim = fleet.worker(VICTIM).proc;
  try {
    const quiet = await quietRun(fleet, o, specs(`${key}-quiet`, o.streams, { maxTokens: MAX_TOKENS }));
    const wave = launchWave(fleet.url, specs(key, o.streams, { maxTokens: MAX_TOKENS }));
    await waitDecodingOn(wave, VICTIM, 2, 5);
    victim.kill("SIGSTOP");
    const late = launchWave(fleet.url, specs(`${key}-late`, 6, { maxTokens: MAX_TOKENS }));
    const records = [...(await wave.done), ...(await late.done)];
    victim.kill("SIGCONT");
    await fleet.waitRoutable(3);
    const leaks = await fleet.leaks();
    const after = await launchWave(fleet.url, specs(`${key}-after`, 12, { maxTokens: 40 })).done;
    return summarize({
      key, title: "SIGSTOP a worker mid-decode, SIGCONT after", seedFailure: SEED_ROWS.networkTimeout,
      records: [...records, ...after], quiet, failedOver: fleet.failedOver(), leaks, unaffected: (r) => r.workerId !== VICTIM && !r.spec.requestId.includes("-after-"),
      notes: [
        `${records.filter((r) => r.spec.requestId.includes("-late-") && r.attempts > 1).length} of 6 requests sent after the freeze waited out the prefill timeout and were retried`,
        `after SIGCONT: ${after.filter((r) => r.workerId === VICTIM && r.end === "complete").length} of 12 new streams served by ${VICTIM}`,
      ],
    });
  } finally {
    victim.kill("SIGCONT");
    await fleet.stop();
  }
}

/** Killed mid-decode and started again at once under the same id (new port): the table follows it. */
export async function restartSameId(o: ScenarioOptions): Promise<ScenarioOutcome> {
  const key = "restart-worker";
  const fleet = await fleetOf();
  try {
    const quiet = await quietRun(fleet, o, specs(`${key}-quiet`, o.streams, { maxTokens: MAX_TOKENS }));
    const oldUrl = fleet.worker(VICTIM).url;
    const wave = launchWave(fleet.url, specs(key, o.streams, { maxTokens: MAX_TOKENS }));
    await waitDecodingOn(wave, VICTIM, 2, 5);
    await fleet.killWorker(VICTIM);
    const restarted = await fleet.restartWorker(VICTIM);
    const records = await wave.done;
    await waitFor(async () => {
      const row = await fleet.tableRow(VICTIM);
      return row !== undefined && row.worker_url === restarted.url && row.routable;
    }, `${VICTIM} routable at its new url`, 30_000);
    const leaks = await fleet.leaks();
    const after = await launchWave(fleet.url, specs(`${key}-after`, o.streams, { maxTokens: 40 })).done;
    const onRestarted = after.filter((r) => r.workerId === VICTIM && r.end === "complete").length;
    return summarize({
      key, title: "restart a worker under the same id (kill -9 mid-decode, start again)", seedFailure: undefined,
      records: [...records, ...after], quiet, failedOver: fleet.failedOver(), leaks,
      unaffected: (r) => r.workerId !== VICTIM && !r.spec.requestId.includes("-after-"),
      notes: [
        `${oldUrl} → ${restarted.url}`,
        `after the restart: ${onRestarted} of ${after.length} new streams served by the new ${VICTIM}`,
      ],
      facts: { onRestarted },
    });
  } finally {
    await fleet.stop();
  }
}
