import { waitFor } from "../http.js";
import { STORIES_MODEL, missingModel } from "../processes.js";
import { ChaosFleet } from "./chaos-fleet.js";
import { SEED_ROWS, summarize, type ScenarioOutcome } from "./chaos-outcome.js";
import { launchWave, type StreamSpec } from "./chaos-stream.js";
import { quietRun, specs, waitDecodingOn, type ScenarioOptions } from "./scenario-kit.js";

/**
 * The kill cases again with the real model (stories260K, llama.cpp through node-llama-cpp) on two
 * workers of one thread each: a failover here re-prefills the prompt and the text so far for real.
 * Skipped with a message when ../shared/models is absent.
 */
export const modelSkipReason = missingModel(STORIES_MODEL);

const VICTIM = "w1";
const MAX_TOKENS = 200;
// stories260K ends a story with BOS; banning BOS and EOS makes every stream run to max_tokens.
const LONG = { logit_bias: { "1": -100, "2": -100 } };
// The survivor has a slot for every stream (24 × 512 tokens × 640 B of KV: 8 MB).
const MODEL_ARGS = ["--model", STORIES_MODEL, "--threads", "1", "--context-size", "512"];
// Re-prefills queue behind the survivor's running decodes on a loaded machine: a generous bound.
const MODEL_COORDINATOR_ENV = { PREFILL_TIMEOUT_MS: "30000", FIRST_TOKEN_TIMEOUT_MS: "10000", STREAM_STALL_TIMEOUT_MS: "5000" };

function modelSpecs(prefix: string, n: number): StreamSpec[] {
  return specs(prefix, n, { maxTokens: MAX_TOKENS, model: "stories260K" }).map((s) => ({ ...s, extra: LONG }));
}

function fleetOf(victimParallel: number, coordinatorEnv: Record<string, string> = {}): Promise<ChaosFleet> {
  return ChaosFleet.start([
    { id: VICTIM, args: [...MODEL_ARGS, "--parallel", String(victimParallel)] },
    { id: "w2", args: [...MODEL_ARGS, "--parallel", "32"] },
  ], { ...MODEL_COORDINATOR_ENV, ...coordinatorEnv });
}

export async function modelKillMidDecode(o: ScenarioOptions): Promise<ScenarioOutcome> {
  const key = "kill-mid-decode-model";
  const fleet = await fleetOf(32);
  try {
    const quiet = await quietRun(fleet, o, modelSpecs(`${key}-quiet`, o.streams));
    const wave = launchWave(fleet.url, modelSpecs(key, o.streams));
    await waitDecodingOn(wave, VICTIM, 2, 5);
    const onVictim = wave.records.filter((r) => r.workerId === VICTIM).length;
    await fleet.killWorker(VICTIM);
    const records = await wave.done;
    return summarize({
      key, title: "kill -9 a stories260K worker mid-decode", seedFailure: SEED_ROWS.midDecode,
      records, quiet, failedOver: fleet.failedOver(), leaks: await fleet.leaks(), unaffected: (r) => r.workerId !== VICTIM,
      notes: [`${onVictim} streams were on ${VICTIM}`],
    });
  } finally {
    await fleet.stop();
  }
}

/**
 * The victim has 2 slots: from its third session on, prefills wait for a slot when it is killed.
 * The seed's profile spreads sessions by count whatever the slots (the default one stops sending to a
 * worker whose slots are all busy, so nothing would queue there).
 */
export async function modelKillMidPrefill(o: ScenarioOptions): Promise<ScenarioOutcome> {
  const key = "kill-mid-prefill-model";
  const fleet = await fleetOf(2, { SCHEDULER_PROFILE: "seed" });
  try {
    const quiet = await quietRun(fleet, o, modelSpecs(`${key}-quiet`, o.streams));
    const wave = launchWave(fleet.url, modelSpecs(key, o.streams));
    const victim = fleet.worker(VICTIM).proc;
    const started = () => victim.logs.filter((l) => l.msg === "session.start" && String(l.request_id).startsWith(`${key}-`) && !String(l.request_id).includes("quiet")).length;
    await waitFor(() => started() >= 3, "a prefill queued for a slot of the victim", 60_000, 5);
    const inFlight = started();
    await fleet.killWorker(VICTIM);
    const records = await wave.done;
    return summarize({
      key, title: "kill -9 a stories260K worker while prefills queue for its slots", seedFailure: SEED_ROWS.midPrefill,
      records, quiet, failedOver: fleet.failedOver(), leaks: await fleet.leaks(), unaffected: (r) => r.workerId !== VICTIM,
      notes: [`killed with ${inFlight} sessions admitted on ${VICTIM} (2 slots: the rest were waiting in prefill)`],
    });
  } finally {
    await fleet.stop();
  }
}
