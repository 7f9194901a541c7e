import type { ServerResponse } from "node:http";
import type { Logger } from "../../common/logger.js";
import type { LogprobContent } from "../../protocol/token-logprobs.js";
import { DecodeReader } from "./decode-reader.js";
import { FlushBatch } from "./flush-batch.js";
import { WorkerStream, type WorkerFailure, type WorkerStreamOptions } from "./worker-stream.js";
import type { UpstreamSource } from "./upstream.js";

/**
 * Relays one worker's decode stream to one client. Tokens read from the worker go into a bounded
 * buffer (64 by default); whatever arrived during one event-loop turn leaves in one write (the
 * count of writes is what a relay's CPU cost follows). When the client's socket is full the buffer
 * fills, and at capacity the worker stream is paused: TCP then pushes back to the worker, whose own
 * channel fills and pauses that session alone. A client whose socket stays full past the write
 * deadline (5 s) is dropped and its worker session cancelled. Terminations: complete,
 * client_disconnect, write_timeout, worker_error, buffer_overflow (a worker that ignores pause).
 *
 * A worker that fails mid-stream (its stream breaks, ends early, reports an error, or stays silent
 * past the first-token or stall timeout while the relay is not holding it back) is replaced when a
 * `failover` is given: the relay swaps in the stream of the worker that continues the answer and
 * the client sees one gap-free, duplicate-free stream.
 */
export type Termination = "complete" | "client_disconnect" | "write_timeout" | "worker_error" | "buffer_overflow";

export interface FinalInfo {
  reason: string;
  promptTokens: number;
  completionTokens: number;
  /** The worker's prefix-cache notice for the sequence left behind (unvalidated). */
  cache?: unknown;
}

/** How one API frames tokens, the end and an error on the wire. */
export interface StreamFormat {
  /** `logprobs`: the entries of these tokens, when the request asked for them (else empty). */
  tokens(texts: readonly string[], logprobs: readonly LogprobContent[]): string;
  end(final: FinalInfo): string;
  error(code: string, message: string): string;
}

export interface RelayOptions {
  upstream: UpstreamSource;
  res: ServerResponse;
  format: StreamFormat;
  bufferTokens: number;
  writeTimeoutMs: number;
  log: Logger;
  /** Stops the worker side (closing the decode request cancels the session there). */
  abortUpstream(): void;
  onFirstToken?(): void;
  /** Called with the count of tokens written, once per write. */
  onTokens?(count: number): void;
  /** The client reads slower than tokens arrive: its buffer filled and the worker was paused (once per stream). */
  onSlowClient?(): void;
  /** A write found the client's socket full; called with how long it took to drain (ms). */
  onWriteWait?(ms: number): void;
  /** Longest wait for a stream's first token, and between two tokens, before the worker counts as stalled (ms). */
  firstTokenTimeoutMs?: number;
  stallTimeoutMs?: number;
  /** Continues the answer on another worker (worker-stream.ts). */
  failover?: WorkerStreamOptions["failover"];
  /** Prompt tokens of the original request, reported when a failover replaced the worker. */
  promptTokens?: number;
  /** Called after each successful failover. */
  onFailover?(): void;
  /** Shares one flush per event-loop turn with the other relays (the pipeline's); default: its own. */
  flushes?: FlushBatch;
}

export interface RelayResult {
  termination: Termination;
  /** Workers that took over the stream mid-way. */
  failovers: number;
  /** Tokens received from the worker (not all of them reached a dropped client). */
  tokens: number;
  final: FinalInfo | undefined;
  error: { code: string; message: string } | undefined;
}

/** Unparsed text held from a worker that ignores pause, or one oversized event (characters). */
const MAX_PENDING_CHARS = 1 << 20;

/**
 * The client side's states: `writing` (the socket takes writes; tokens leave once per turn),
 * `awaiting_drain` (the socket is full: no write until 'drain', under the write deadline),
 * `finished` (the result is decided; nothing more happens).
 */
export type RelayState = "writing" | "awaiting_drain" | "finished";
/** Whether the worker flows or is held back (paused) because the buffer is full. */
export type UpstreamHold = "flowing" | "held";

export function relay(o: RelayOptions): Promise<RelayResult> {
  return new Promise<RelayResult>((resolve) => new Relay(o, resolve));
}

/**
 * Events are parsed from the worker's bytes only while the buffer has room, so no stream does more
 * than `bufferTokens` events of work per turn and the buffer never holds more; the rest waits
 * unparsed, with the worker paused, until a write empties the buffer. The worker side (its
 * timeouts, its end, a failover) is the WorkerStream's; the relay only reads events and writes.
 */
class Relay {
  state: RelayState = "writing";
  hold: UpstreamHold = "flowing";
  private readonly events: DecodeReader;
  private readonly worker: WorkerStream;
  private readonly flushes: FlushBatch;
  private buffer: string[] = [];
  /** Logprob entries of the buffered tokens (only when the request asked for them). */
  private logprobs: LogprobContent[] = [];
  /** Tokens received, from every worker of this stream. */
  private received = 0;
  /** Tokens received from earlier workers of this stream (their counts precede the current one's). */
  private receivedBefore = 0;
  /** Tokens written to the client. */
  private written = 0;
  /** All token text received, kept only when a failover may need to continue it. */
  private relayedText = "";
  private readonly keepText: boolean;
  private flushScheduled = false;
  private slowReported = false;
  private waitStartMs = 0;
  private deadline: NodeJS.Timeout | undefined;

  constructor(private readonly o: RelayOptions, private readonly resolve: (r: RelayResult) => void) {
    this.events = new DecodeReader(o.log);
    this.flushes = o.flushes ?? new FlushBatch();
    this.keepText = o.failover !== undefined;
    this.worker = new WorkerStream(o, {
      data: (chunk) => this.onWorkerData(chunk),
      ended: () => this.pump(),
      // Events parsed from the failed stream stay in the buffer and reach the client; unparsed ones are dropped.
      switched: () => {
        this.events.restart();
        this.receivedBefore = this.received;
      },
      failed: (error) => this.finish("worker_error", undefined, error),
      relayed: () => ({ text: this.relayedText, tokens: this.received }),
      holding: () => this.hold === "held",
    });
    o.res.on("drain", this.onDrain);
    o.res.on("close", this.onClientClose);
  }

  private onWorkerData(chunk: Buffer | string): void {
    this.events.push(chunk);
    if (this.events.pendingLength > MAX_PENDING_CHARS) {
      if (this.events.hasEvent) {
        this.o.log.warn({ buffered: this.buffer.length, pending_chars: this.events.pendingLength }, "stream.buffer_overflow");
        return this.finish("buffer_overflow");
      }
      return this.worker.fail({ code: "worker_error", message: "worker sent an oversized event" });
    }
    this.worker.alive();
    this.pump();
  }

  /** Reads events while the buffer has room; holds the worker when it is full, lets it flow when all is read. */
  private pump(): void {
    if (this.worker.recovering) return this.scheduleFlush();
    while (this.buffer.length < this.o.bufferTokens) {
      const e = this.events.next();
      if (e === undefined) break;
      if (typeof e === "string") {
        this.take(e);
        const lp = this.events.tokenLogprobs;
        if (lp !== undefined) for (const l of lp) this.logprobs.push(l);
        continue;
      }
      if (e.kind === "error") return this.worker.fail({ code: e.code, message: e.message });
      if (e.text !== "") this.buffer.push(e.text);
      return this.finish("complete", {
        reason: e.reason,
        promptTokens: this.worker.failovers > 0 && this.o.promptTokens !== undefined ? this.o.promptTokens : (e.promptTokens ?? 0),
        completionTokens: this.receivedBefore + (e.completionTokens ?? this.received - this.receivedBefore),
        ...(e.cache !== undefined ? { cache: e.cache } : {}),
      });
    }
    if (this.buffer.length >= this.o.bufferTokens) this.holdWorker();
    else if (this.worker.state === "ended") this.worker.fail({ code: "worker_error", message: "the worker stream ended before the last token", died: true });
    else if (this.hold === "held") {
      this.hold = "flowing";
      this.worker.resume();
    }
    this.scheduleFlush();
  }

  private take(text: string): void {
    this.received++;
    this.buffer.push(text);
    if (this.keepText) this.relayedText += text;
  }

  private holdWorker(): void {
    if (this.hold === "held") return;
    this.hold = "held";
    this.worker.pause();
    this.o.log.debug({ buffered: this.buffer.length }, "stream.buffer_high");
    if (this.slowReported) return;
    this.slowReported = true;
    this.o.log.warn({ buffered: this.buffer.length, tokens: this.received }, "stream.slow_client");
    this.o.onSlowClient?.();
  }

  private scheduleFlush(): void {
    if (this.buffer.length === 0 || this.flushScheduled || this.state !== "writing") return;
    this.flushScheduled = true;
    this.flushes.schedule(this.flush);
  }

  private readonly flush = (): void => {
    this.flushScheduled = false;
    if (this.state !== "writing") return;
    if (this.buffer.length === 0) return this.pump();
    const n = this.buffer.length;
    const chunk = this.o.format.tokens(this.buffer, this.logprobs);
    this.buffer = [];
    this.logprobs = [];
    const ok = this.o.res.write(chunk);
    if (this.written === 0) this.o.onFirstToken?.();
    this.written += n;
    this.o.onTokens?.(n);
    if (!ok) {
      this.state = "awaiting_drain";
      this.waitStartMs = performance.now();
      this.deadline = setTimeout(() => {
        this.o.onWriteWait?.(this.o.writeTimeoutMs);
        this.o.log.warn({ write_timeout_ms: this.o.writeTimeoutMs, buffered: this.buffer.length }, "stream.write_timeout");
        this.finish("write_timeout");
      }, this.o.writeTimeoutMs);
    }
    this.pump();
  };

  private readonly onDrain = (): void => {
    if (this.state !== "awaiting_drain") return;
    this.state = "writing";
    clearTimeout(this.deadline);
    this.o.onWriteWait?.(performance.now() - this.waitStartMs);
    this.flush();
  };

  private readonly onClientClose = (): void => {
    if (!this.o.res.writableFinished) this.finish("client_disconnect");
  };

  private finish(termination: Termination, final?: FinalInfo, error?: WorkerFailure): void {
    if (this.state === "finished") return;
    this.state = "finished";
    const { res, format } = this.o;
    clearTimeout(this.deadline);
    res.off("drain", this.onDrain);
    res.off("close", this.onClientClose);
    if (termination === "complete" || termination === "worker_error") {
      const n = this.buffer.length;
      let tail = n > 0 || this.logprobs.length > 0 ? format.tokens(this.buffer, this.logprobs) : "";
      this.buffer = [];
      this.logprobs = [];
      tail += termination === "complete" ? format.end(final!) : format.error(error!.code, error!.message);
      if (this.written === 0 && this.received > 0) this.o.onFirstToken?.();
      if (n > 0) this.o.onTokens?.(n);
      res.end(tail);
      if (!res.writableFinished) {
        const t = setTimeout(() => res.destroy(), this.o.writeTimeoutMs);
        res.once("close", () => clearTimeout(t));
      }
    } else if (termination !== "client_disconnect") {
      res.destroy();
    }
    if (termination !== "complete") this.o.abortUpstream();
    this.worker.close(termination !== "complete");
    this.resolve({ termination, failovers: this.worker.failovers, tokens: this.received, final, error });
  }
}
