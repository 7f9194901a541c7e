import type { Dispatcher } from "undici";
import type { Upstream, UpstreamSink } from "../stream/upstream.js";
import { WorkerFault } from "./worker-fault.js";

/**
 * One streamed exchange with a worker, read at undici's dispatch level: the parser's body chunks go
 * straight to the relay's sink (no Readable, no stream events, no buffering per token), and the
 * relay's pause/resume are the parser's own (a paused parser leaves the bytes in the socket: TCP
 * pushes back to the worker). Two phases:
 *   - opening: the status; a non-200's body (at most `maxAnswerBytes`, read whole); for an exchange
 *     that opens with an acknowledgement (`/worker/generate`), its first SSE event;
 *   - body: every later byte, to the sink attached then. Bytes that arrive before a sink is attached
 *     wait (past UNATTACHED_MAX_BYTES the worker is paused) and are handed over in order, on a
 *     microtask after `attach` (never inside it: the reader is still being set up then).
 * After `destroy()` (the coordinator closes the exchange: the worker cancels the session) nothing
 * more is delivered, not even the abort's own error; after a detach, arriving bytes are dropped.
 */
export type Opening =
  /** `ack`: the acknowledgement's SSE block (without its blank line); undefined when the answer is no event stream. */
  | { status: 200; ack: string | undefined }
  | { status: number; text: string };

export interface ExchangeOptions {
  /** The body opens with one SSE event, handed over with the opening (comment blocks before it are skipped). */
  ackFirst: boolean;
  /** Largest error body or acknowledgement read (bytes); a larger one is a protocol fault. */
  maxAnswerBytes: number;
}

/** Body bytes held while no sink is attached before the worker is paused (bytes). */
const UNATTACHED_MAX_BYTES = 64 * 1024;
const BLANK_LINE = Buffer.from("\n\n");

type Phase = "head" | "ack" | "error_body" | "body" | "done";

export class WorkerExchange implements Dispatcher.DispatchHandler, Upstream {
  readonly opened: Promise<Opening>;
  private settle!: { resolve(o: Opening): void; reject(err: Error): void };
  private phase: Phase = "head";
  private controller: Dispatcher.DispatchController | undefined;
  private status = 0;
  /** The opening's bytes so far (an error body, or the acknowledgement). */
  private head: Buffer | undefined;
  private sink: UpstreamSink | undefined;
  /** Body chunks not handed over yet: no sink so far, or a hand-over is scheduled. */
  private pending: Buffer[] | undefined;
  private pendingBytes = 0;
  /** How the body ended while chunks still waited (handed over after them). */
  private outcome: "end" | Error | undefined;
  private handOverScheduled = false;
  /** A sink was attached and then detached: later bytes are dropped. */
  private detached = false;
  /** The coordinator closed the exchange. */
  private closed = false;
  /** The reader holds the worker back. */
  private held = false;

  constructor(private readonly o: ExchangeOptions) {
    this.opened = new Promise<Opening>((resolve, reject) => (this.settle = { resolve, reject }));
    // A rejection nobody awaits (an exchange closed before its caller looked) is not unhandled.
    this.opened.catch(() => {});
  }

  get destroyed(): boolean {
    return this.closed || this.phase === "done";
  }

  /** For an AbortSignal's listener. */
  readonly abort = (): void => this.destroy();

  // --- undici's handler ---

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.controller = controller;
    if (this.closed) controller.abort(new Error("closed by the coordinator"));
  }

  onResponseStart(_controller: Dispatcher.DispatchController, statusCode: number, headers: Record<string, string | string[] | undefined>): void {
    if (statusCode < 200) return; // 1xx: the real answer follows
    this.status = statusCode;
    if (statusCode !== 200) this.phase = "error_body";
    // A 200 that is no event stream has no acknowledgement to wait for: the caller looks at the opening and closes it.
    else if (this.o.ackFirst && String(headers["content-type"] ?? "").startsWith("text/event-stream")) this.phase = "ack";
    else this.openBody(undefined);
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    switch (this.phase) {
      case "body":
        return this.deliver(chunk);
      case "ack":
        return this.readAck(controller, chunk);
      case "error_body":
        this.head = this.head === undefined ? chunk : Buffer.concat([this.head, chunk]);
        if (this.head.length > this.o.maxAnswerBytes) this.failOpening(controller, `the worker's answer exceeds ${this.o.maxAnswerBytes} bytes`);
        return;
      default:
    }
  }

  onResponseEnd(): void {
    const phase = this.phase;
    this.phase = "done";
    if (phase === "error_body") return this.settle.resolve({ status: this.status, text: this.head?.toString("utf8") ?? "" });
    if (phase === "body") return this.finish("end");
    if (phase === "ack" || phase === "head") this.settle.reject(new WorkerFault("the worker's answer ended before its acknowledgement", "protocol", this.status));
  }

  onResponseError(_controller: Dispatcher.DispatchController, err: Error): void {
    const phase = this.phase;
    this.phase = "done";
    if (phase === "body") return this.finish(err);
    // Settled already when the body had opened; otherwise the opening fails with the transport's error.
    this.settle.reject(err);
  }

  // --- the upstream the relay reads ---

  attach(sink: UpstreamSink | undefined): void {
    this.sink = sink;
    if (sink === undefined) {
      this.detached = true;
      this.pending = undefined;
      // Nobody reads any more: an exchange left open (a complete answer) runs to its end and its connection is reused.
      this.held = false;
      this.controller?.resume();
      return;
    }
    this.detached = false;
    if (this.handOverScheduled) return;
    this.handOverScheduled = true;
    queueMicrotask(this.handOver);
  }

  pause(): void {
    this.held = true;
    this.controller?.pause();
  }

  resume(): void {
    this.held = false;
    this.controller?.resume();
  }

  destroy(): void {
    if (this.closed) return;
    this.closed = true;
    this.sink = undefined;
    this.pending = undefined;
    if (this.phase !== "done") this.controller?.abort(new Error("closed by the coordinator"));
  }

  private openBody(ack: string | undefined): void {
    this.phase = "body";
    this.settle.resolve({ status: 200, ack });
  }

  /** The acknowledgement: the first SSE block that is not a comment. */
  private readAck(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    let buf = this.head === undefined ? chunk : Buffer.concat([this.head, chunk]);
    for (;;) {
      const end = buf.indexOf(BLANK_LINE);
      if (end === -1) break;
      const block = buf.toString("utf8", 0, end);
      buf = buf.subarray(end + 2);
      if (block.startsWith(":") || block === "") continue;
      this.head = undefined;
      this.openBody(block);
      if (buf.length > 0) this.deliver(buf);
      return;
    }
    this.head = buf;
    if (buf.length > this.o.maxAnswerBytes) this.failOpening(controller, `the worker's acknowledgement exceeds ${this.o.maxAnswerBytes} bytes`);
  }

  private failOpening(controller: Dispatcher.DispatchController, message: string): void {
    this.phase = "done";
    this.head = undefined;
    this.settle.reject(new WorkerFault(message, "protocol", this.status));
    this.closed = true;
    controller.abort(new Error(message));
  }

  private deliver(chunk: Buffer): void {
    if (this.closed || this.detached) return;
    if (this.sink !== undefined && this.pending === undefined) return this.sink.data(chunk);
    (this.pending ??= []).push(chunk);
    this.pendingBytes += chunk.length;
    if (this.sink === undefined && this.pendingBytes > UNATTACHED_MAX_BYTES) this.controller?.pause();
  }

  private finish(outcome: "end" | Error): void {
    if (this.closed || this.detached) return;
    if (this.sink !== undefined && this.pending === undefined) return outcome === "end" ? this.sink.end() : this.sink.error(outcome);
    this.outcome = outcome;
  }

  /**
   * Hands the waiting chunks, then a waiting end, to the sink attached since, in order: a chunk that
   * arrives meanwhile (a resume inside `data` runs the parser at once) queues behind them. Then lets
   * a worker paused for want of a sink flow again, unless the reader holds it.
   */
  private readonly handOver = (): void => {
    this.handOverScheduled = false;
    while (this.sink !== undefined && this.pending !== undefined) {
      const chunk = this.pending.shift();
      if (chunk === undefined) {
        this.pending = undefined;
        break;
      }
      this.pendingBytes -= chunk.length;
      this.sink.data(chunk);
    }
    if (this.sink === undefined) return;
    this.pendingBytes = 0;
    const outcome = this.outcome;
    this.outcome = undefined;
    if (outcome === "end") return this.sink.end();
    if (outcome !== undefined) return this.sink.error(outcome);
    if (!this.held) this.controller?.resume();
  };
}
