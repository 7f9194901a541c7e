import type { Clock } from "../../common/clock.js";
import type { Logger } from "../../common/logger.js";
import { BLOCK_CHARS } from "../../protocol/prefix-blocks.js";
import type { KvExportSource } from "../../protocol/worker-api.js";
import type { PromptTokenEstimator } from "../admission/prompt-token-estimator.js";
import { chooseMove, TransferRate } from "../fleet/kv-move-rule.js";
import type { PrefixMatch } from "../fleet/prefix-index.js";
import type { WorkerClient } from "../fleet/worker-client.js";
import type { WorkerTable } from "../fleet/worker-table.js";
import type { Candidate, Decision } from "../scheduler/types.js";

/**
 * A conversation whose worker cannot take its next turn now (the filters dropped it: no session
 * or KV room, or it is tried already; or the saturation guard zeroed its cache score) while it
 * holds more of the conversation than the worker picked instead: its KV moves to the pick over
 * the worker API (`POST /worker/export` on the holder, `POST /worker/adopt` on the pick: the
 * format a drain uses) when the rule (fleet/kv-move-rule.ts) says that beats prefilling it there.
 *
 * Only that case pays: `sourceFor` is a look at the prefix match the request already has, and
 * answers undefined for every request whose pick holds as much as anyone. A move is bounded by
 * the prefill it replaces (at least MOVE_MIN_BUDGET_MS); when it fails or runs out, the request
 * prefills as it would have, having lost at most that budget.
 */
export interface KvMoveDeps {
  table: WorkerTable;
  client: WorkerClient;
  estimator: PromptTokenEstimator;
  clock: Clock;
}

/** A move made for a request: from which worker, how many tokens, where the holder had them. */
export interface KvMoved {
  from: string;
  tokens: number;
  source: KvExportSource;
  /** Whether the pick restored the bytes (false: another engine build, it prefilled the tokens). */
  restored: boolean;
  ms: number;
}

export interface MoveSource {
  id: string;
  url: string;
  /** Leading prompt blocks the holder has (slot or tier), and the pick. */
  blocks: number;
  pickBlocks: number;
}

/** Least time a move may take before the request gives up on it and prefills (ms). */
const MOVE_MIN_BUDGET_MS = 500;

export class KvMove {
  private readonly rate = new TransferRate();

  constructor(private readonly d: KvMoveDeps) {}

  /** Bytes per ms measured over the moves so far (undefined before the first). */
  get transferBytesPerMs(): number | undefined {
    return this.rate.bytesPerMs;
  }

  /** The worker to move the conversation's KV from for this decision, or undefined (the ordinary case). */
  sourceFor(decision: Extract<Decision, { ok: true }>, prefix: PrefixMatch): MoveSource | undefined {
    const pick = decision.pick.candidate.id;
    const heldBy = (id: string) => Math.max(prefix.matched.get(id) ?? 0, prefix.tiers?.get(id)?.blocks ?? 0);
    const pickBlocks = heldBy(pick);
    let best: { id: string; blocks: number } | undefined;
    for (const holders of [prefix.matched.keys(), prefix.tiers?.keys() ?? []]) {
      for (const id of holders) {
        const blocks = id === pick ? 0 : heldBy(id);
        if (blocks > pickBlocks && blocks > (best?.blocks ?? 0)) best = { id, blocks };
      }
    }
    if (best === undefined) return undefined;
    // A holder the scheduler kept and did not find saturated lost to the pick on its merits: no move.
    if (decision.ranked.some((s) => s.candidate.id === best.id) && !decision.saturated.includes(best.id)) return undefined;
    const e = this.d.table.get(best.id);
    const now = this.d.clock.now();
    if (e === undefined || !this.d.table.isFresh(e, now) || !e.breaker.allows(now) || !e.health.alive) return undefined;
    return { id: best.id, url: e.url, blocks: best.blocks, pickBlocks };
  }

  /**
   * Moves the conversation's KV from `src` to `pick` when the rule says so; resolves to what moved,
   * or undefined (refused by the rule, nothing to move, a failure: the request then prefills).
   */
  async move(o: { model: string; conversationId: string; requestId: string; signal: AbortSignal; log: Logger }, src: MoveSource, pick: Candidate): Promise<KvMoved | undefined> {
    const costs = this.d.table.get(pick.id)?.health.kv_tiers;
    const holder = this.d.table.get(src.id)?.health;
    if (costs === undefined || holder === undefined) return undefined;
    const tokensOf = (blocks: number) => (blocks === 0 ? 0 : this.d.estimator.estimate(o.model, blocks * BLOCK_CHARS));
    const stateTokens = tokensOf(src.blocks);
    const choice = chooseMove({
      stateTokens, stateBytes: stateTokens * holder.model.kv_bytes_per_token, gainTokens: stateTokens - tokensOf(src.pickBlocks),
      transferBytesPerMs: this.rate.bytesPerMs, restoreMsPerToken: costs.restore_ms_per_token.host, prefillMsPerToken: costs.prefill_ms_per_token,
    });
    const fields = { from: src.id, to: pick.id, conversation_id: o.conversationId, est_tokens: stateTokens, ...roundAll(choice) };
    if (!choice.move) {
      o.log.debug(fields, "kv.move_refused");
      return undefined;
    }
    const budgetMs = moveBudgetMs(choice.prefillMs);
    const started = this.d.clock.now();
    try {
      const t = await this.d.client.moveKv(src.url, pick.url, o.conversationId, o.requestId, budgetMs, o.signal);
      const ms = this.d.clock.now() - started;
      // Over the time that was not the adopter's restore.
      if (t.adopted.kv_restored) this.rate.observe(t.stateBytes, ms - (t.adopted.restore_ms ?? 0));
      const moved: KvMoved = { from: src.id, tokens: t.tokens, source: t.source, restored: t.adopted.kv_restored, ms };
      o.log.info({ ...fields, tokens: moved.tokens, source: t.source, restored: moved.restored, ms: Math.round(ms), restore_ms: t.adopted.restore_ms }, "kv.moved");
      return moved;
    } catch (err) {
      o.log.info({ ...fields, err: (err as Error).message, ms: Math.round(this.d.clock.now() - started) }, "kv.move_failed");
      return undefined;
    }
  }
}

/** The longest a move may take: the prefill it replaces, at least MOVE_MIN_BUDGET_MS, in whole ms (timers refuse fractions). */
export function moveBudgetMs(prefillMs: number): number {
  return Math.ceil(Math.max(MOVE_MIN_BUDGET_MS, prefillMs));
}

function roundAll(c: { move: boolean; transferMs: number; restoreMs: number; prefillMs: number }) {
  const r = (x: number) => (Number.isFinite(x) ? Math.round(x * 100) / 100 : x);
  return { transfer_ms: r(c.transferMs), restore_ms: r(c.restoreMs), prefill_ms: r(c.prefillMs) };
}
