import { StringDecoder } from "node:string_decoder";
import type { Logger } from "../../common/logger.js";
import { parseDecodeEvent, type DecodeEvent } from "../../protocol/decode-event.js";
import { SseReader } from "../../protocol/sse.js";
import type { LogprobContent } from "../../protocol/token-logprobs.js";
import type { PrefillResponse } from "../../protocol/worker-api.js";
import { fastTokenText, type TokenSeqSlot } from "../../protocol/worker-token-event.js";

/**
 * One worker's decode stream from bytes to events, the only place where the coordinator
 * interprets what a worker sends (the relay and the collector both read through it). Events are
 * read one at a time, on demand, so that a reader that has no room leaves the rest unparsed.
 *
 * A token comes back as its text alone (a string: no object per token on the hot path); the end
 * and an error as their DecodeEvent. Anything else (not JSON, no token) is logged and skipped; a
 * token whose `seq` is not the next one is logged as a gap and relayed all the same.
 * A token's logprob entries (when the request asked for them) are `tokenLogprobs` after it is read.
 * A /worker/generate stream's prefill acknowledgement is kept in `prefillAck`, not returned.
 */
export type ReadEvent = string | Exclude<DecodeEvent, { kind: "token" | "prefill" }>;

export class DecodeReader {
  private sse = new SseReader();
  private decoder = new StringDecoder("utf8");
  /** The decoder holds no partial character (the last chunk it read ended on an ASCII byte). */
  private whole = true;
  private expectedSeq = 0;
  private readonly slot: TokenSeqSlot = { seq: 0 };
  /** The logprob entries of the token `next()` returned last (undefined when it carried none). */
  tokenLogprobs: LogprobContent[] | undefined;
  /** The prefill acknowledgement a /worker/generate stream opens with, once read. */
  prefillAck: PrefillResponse | undefined;

  constructor(private readonly log: Logger) {}

  /** Bytes (or text) from the worker, decoded as UTF-8 across chunk boundaries. */
  push(chunk: Buffer | string): void {
    if (typeof chunk === "string") return this.sse.push(chunk);
    // A chunk that ends on an ASCII byte, after one that did too, holds only whole characters (the
    // decoder keeps nothing back): decoded at once. An SSE event ends with "\n\n", so nearly all do.
    const last = chunk.length === 0 ? 0 : chunk[chunk.length - 1]!;
    if (this.whole && last < 0x80) return this.sse.push(chunk.toString("utf8"));
    this.whole = last < 0x80;
    this.sse.push(this.decoder.write(chunk));
  }

  /** The next event, or undefined when no complete event waits. */
  next(): ReadEvent | undefined {
    for (;;) {
      const data = this.sse.nextData();
      if (data === undefined) return undefined;
      const fast = fastTokenText(data, this.slot);
      if (fast !== undefined) {
        // An event with logprobs never takes the fast path (it has a field after `seq`).
        this.tokenLogprobs = undefined;
        this.sequenced(this.slot.seq);
        return fast;
      }
      const e = parseDecodeEvent(data);
      if (e === null) {
        this.log.warn({ data: data.slice(0, 200) }, "stream.bad_event");
        continue;
      }
      if (e.kind === "prefill") {
        this.prefillAck = e.prefill;
        continue;
      }
      if (e.kind !== "token") return e;
      this.sequenced(e.seq);
      this.tokenLogprobs = e.logprobs;
      return e.text;
    }
  }

  /** Another worker continues the answer: its bytes and its numbering start over (unread events are dropped). */
  restart(): void {
    this.sse = new SseReader();
    this.decoder = new StringDecoder("utf8");
    this.whole = true;
    this.expectedSeq = 0;
  }

  /** True when a complete event waits to be read. */
  get hasEvent(): boolean {
    return this.sse.hasEvent;
  }

  /** Characters received and not yet read (for bounding memory against a worker that ignores pause). */
  get pendingLength(): number {
    return this.sse.pendingLength;
  }

  private sequenced(seq: number | undefined): void {
    if (seq !== this.expectedSeq) this.log.warn({ expected: this.expectedSeq, got: seq }, "stream.sequence_gap");
    this.expectedSeq = (seq ?? this.expectedSeq) + 1;
  }
}
