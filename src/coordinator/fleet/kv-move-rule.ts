/**
 * Whether a conversation's KV moves to the worker picked for its next turn (its own worker cannot
 * take the turn now) instead of that worker prefilling the history again:
 *
 *   move  when  stateBytes ÷ transfer rate + stateTokens × adopter's restore ms/token
 *               <  gainTokens × adopter's prefill ms/token
 *
 * `gainTokens`: prompt tokens the moved KV provides beyond what the adopter holds already.
 * The adopter's rates are its own measurements (calibrated at start, then a running mean of every
 * prefill and restore, published in its heartbeat with its KV tiers): an adopter without them
 * publishes no costs and nothing moves to it. The transfer rate is this coordinator's running
 * mean over the moves it made (export + adopt wall time less the adopter's restore, per state
 * byte); before the first move it is unknown and taken as free, so that the first move measures it.
 * Pure: no clock, no I/O.
 */
export interface MoveCosts {
  stateTokens: number;
  stateBytes: number;
  gainTokens: number;
  /** Bytes per ms; undefined: not measured yet. */
  transferBytesPerMs: number | undefined;
  restoreMsPerToken: number;
  prefillMsPerToken: number;
}

export interface MoveChoice {
  move: boolean;
  transferMs: number;
  restoreMs: number;
  prefillMs: number;
}

export function chooseMove(c: MoveCosts): MoveChoice {
  const rate = c.transferBytesPerMs;
  const transferMs = rate === undefined ? 0 : rate > 0 ? c.stateBytes / rate : Infinity;
  const restoreMs = c.stateTokens * c.restoreMsPerToken;
  const prefillMs = c.gainTokens * c.prefillMsPerToken;
  const move = c.gainTokens > 0 && c.prefillMsPerToken > 0 && transferMs + restoreMs < prefillMs;
  return { move, transferMs, restoreMs, prefillMs };
}

/** Weight of a new observation in the running transfer rate. */
const RATE_ALPHA = 0.2;
/** Transfers shorter than this are mostly fixed overhead (ms), and too coarse for a rate. */
const MIN_TRANSFER_MS = 1;

/** The running transfer rate (bytes per ms) over the moves made. */
export class TransferRate {
  private rate: number | undefined;

  get bytesPerMs(): number | undefined {
    return this.rate;
  }

  observe(bytes: number, ms: number): void {
    if (!(bytes > 0) || !(ms >= 0)) return;
    const sample = bytes / Math.max(ms, MIN_TRANSFER_MS);
    this.rate = this.rate === undefined ? sample : this.rate + RATE_ALPHA * (sample - this.rate);
  }
}
