import type { Logger } from "../../common/logger.js";
import { ServingError } from "../../protocol/serving-error.js";
import type { Decision } from "../scheduler/types.js";
import type { WorkerClient } from "./worker-client.js";
import type { WorkerTable } from "./worker-table.js";

/**
 * Graceful drain with KV handoff. The worker stops taking sessions and lists the sequences it
 * caches (conversations kept between turns, and anonymous prefixes); each goes, most recent first,
 * to the worker the scheduler would send that conversation's next turn to (its rendezvous
 * affinity, among the routable workers of the same model), which evaluates the same tokens into a
 * free slot and publishes the blocks. The next turn then finds its KV on the new worker and the
 * user notices nothing. Running decodes finish where they are. Bounded in time: what is left when
 * the budget runs out is simply rebuilt by the next turn's prefill.
 */
export interface DrainResult {
  worker_id: string;
  draining: true;
  /** Decodes still running on the worker (they finish there). */
  running: number;
  cached: number;
  handed_off: number;
  failed: number;
  skipped: number;
  targets: Record<string, number>;
}

export interface DrainDeps {
  table: WorkerTable;
  client: WorkerClient;
  /** Where a conversation would go now (the pipeline's scheduling, without its request steps). */
  pipeline: Placement;
  log: Logger;
}

/** Longest a handoff may take in all, and one adopt request (ms). */
const HANDOFF_BUDGET_MS = 8000;
const CALL_TIMEOUT_MS = 5000;

export async function drainWorker(d: DrainDeps, workerId: string, requestId: string): Promise<DrainResult> {
  const entry = d.table.get(workerId);
  if (entry === undefined) throw new ServingError("not_found", `unknown worker ${workerId}`);
  const listing = await d.client.drain(entry.url, requestId, CALL_TIMEOUT_MS).catch((err: Error) => {
    throw new ServingError("worker_unreachable", `worker ${workerId} did not answer the drain: ${err.message}`);
  });
  d.table.markDraining(workerId);
  const result: DrainResult = {
    worker_id: workerId, draining: true, running: listing.running, cached: listing.entries.length,
    handed_off: 0, failed: 0, skipped: 0, targets: {},
  };
  const deadline = Date.now() + HANDOFF_BUDGET_MS;
  for (const e of listing.entries) {
    if (Date.now() >= deadline) {
      result.skipped++;
      continue;
    }
    const exclude = new Set([workerId]);
    let placed = false;
    // One more target if the first cannot take it (full, or gone meanwhile).
    for (let attempt = 0; attempt < 2 && !placed; attempt++) {
      const decision = d.pipeline.placement(listing.model, e.tokens.length, exclude, e.conversation_id ?? undefined);
      if (!decision.ok) break;
      const target = decision.pick.candidate;
      exclude.add(target.id);
      try {
        await d.client.adopt(target.url, { ...e, model: listing.model }, requestId, Math.min(CALL_TIMEOUT_MS, Math.max(1, deadline - Date.now())));
        placed = true;
        result.targets[target.id] = (result.targets[target.id] ?? 0) + 1;
      } catch (err) {
        d.log.warn({ worker_id: target.id, conversation_id: e.conversation_id, err: (err as Error).message }, "drain.adopt_failed");
      }
    }
    if (placed) result.handed_off++;
    else result.failed++;
  }
  d.log.info({ ...result }, "worker.drained");
  return result;
}

/**
 * `POST /coordinator/workers/{id}/undrain`: the worker takes sessions again, and this coordinator
 * routes to it at once (its next heartbeat confirms). Cached sequences already handed off stay
 * where they went.
 */
export async function undrainWorker(d: Pick<DrainDeps, "table" | "client" | "log">, workerId: string, requestId: string): Promise<{ worker_id: string; draining: false }> {
  const entry = d.table.get(workerId);
  if (entry === undefined) throw new ServingError("not_found", `unknown worker ${workerId}`);
  await d.client.undrain(entry.url, requestId, CALL_TIMEOUT_MS).catch((err: Error) => {
    if (err instanceof ServingError) throw err;
    throw new ServingError("worker_unreachable", `worker ${workerId} did not answer the undrain: ${err.message}`);
  });
  d.table.markUndrained(workerId);
  d.log.info({ worker_id: workerId }, "worker.undrained");
  return { worker_id: workerId, draining: false };
}

/** The scheduling a drain asks for: where the profile would send a conversation's next turn now. */
export interface Placement {
  placement(model: string, tokens: number, exclude: ReadonlySet<string>, conversationId: string | undefined): Decision;
}
