import type { ServerResponse } from "node:http";
import type { Readable } from "node:stream";
import { StringDecoder } from "node:string_decoder";
import type { Logger } from "../common/logger.js";
import { SseReader } from "../protocol/sse.js";
import { fastTokenSeq, fastTokenText } from "../protocol/worker-token-event.js";

/**
 * Relays one worker's decode stream to one client. Tokens read from the worker go into a bounded
 * buffer (64 by default); whatever arrived during one event-loop turn leaves in one write (the
 * count of writes is what a relay's CPU cost follows). When the client's socket is full the buffer
 * fills, and at capacity the worker stream is paused: TCP then pushes back to the worker, whose own
 * channel fills and pauses that session alone. A client whose socket stays full past the write
 * deadline (5 s) is dropped and its worker session cancelled. Terminations: complete,
 * client_disconnect, write_timeout, worker_error, buffer_overflow (a worker that ignores pause).
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
  tokens(texts: readonly string[]): string;
  end(final: FinalInfo): string;
  error(code: string, message: string): string;
}

export interface RelayOptions {
  upstream: Readable;
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
}

export interface RelayResult {
  termination: Termination;
  /** Tokens received from the worker (not all of them reached a dropped client). */
  tokens: number;
  final: FinalInfo | undefined;
  error: { code: string; message: string } | undefined;
}

/** Unparsed text held from a worker that ignores pause, or one oversized event (characters). */
const MAX_PENDING_CHARS = 1 << 20;

interface WorkerEvent {
  token?: unknown;
  seq?: unknown;
  finished?: unknown;
  reason?: unknown;
  prompt_tokens?: unknown;
  cache?: unknown;
  completion_tokens?: unknown;
  error?: { code?: unknown; message?: unknown };
}

/**
 * Flushes are batched across all relays: one setImmediate per event-loop turn runs every relay
 * that received tokens in that turn (instead of one setImmediate per stream per turn).
 */
let flushQueue: (() => void)[] = [];
let flushTurnScheduled = false;

function runFlushes(): void {
  flushTurnScheduled = false;
  const q = flushQueue;
  flushQueue = [];
  for (const f of q) f();
}

function queueFlush(f: () => void): void {
  flushQueue.push(f);
  if (!flushTurnScheduled) {
    flushTurnScheduled = true;
    setImmediate(runFlushes);
  }
}

/**
 * The relay's states: events are parsed from the worker's bytes only while the buffer has room,
 * so no stream does more than `bufferTokens` events of work per turn and the buffer never holds
 * more; the rest waits unparsed, with the worker stream paused, until a write empties the buffer.
 */
export function relay(o: RelayOptions): Promise<RelayResult> {
  const { upstream, res, format, log } = o;
  return new Promise<RelayResult>((resolve) => {
    const reader = new SseReader();
    // A multi-byte character may straddle two reads.
    const decoder = new StringDecoder("utf8");
    let buffer: string[] = [];
    let received = 0;
    let expectedSeq = 0;
    let done = false;
    let waitingDrain = false;
    let flushQueued = false;
    let paused = false;
    let upstreamEnded = false;
    let firstSent = false;
    let slow = false;
    let waitStartMs = 0;
    let deadline: NodeJS.Timeout | undefined;

    const cleanup = () => {
      clearTimeout(deadline);
      upstream.off("data", onData);
      upstream.off("end", onUpstreamEnd);
      upstream.off("error", onUpstreamError);
      upstream.off("close", onUpstreamEnd);
      res.off("drain", onDrain);
      res.off("close", onClientClose);
    };

    const finish = (termination: Termination, final?: FinalInfo, error?: { code: string; message: string }) => {
      if (done) return;
      done = true;
      cleanup();
      if (termination === "complete" || termination === "worker_error") {
        const n = buffer.length;
        let tail = n > 0 ? format.tokens(buffer) : "";
        buffer = [];
        tail += termination === "complete" ? format.end(final!) : format.error(error!.code, error!.message);
        if (!firstSent && received > 0) o.onFirstToken?.();
        if (n > 0) o.onTokens?.(n);
        res.end(tail);
        // A client that never takes the last bytes is still bound by the write deadline.
        if (!res.writableFinished) {
          const t = setTimeout(() => res.destroy(), o.writeTimeoutMs);
          res.once("close", () => clearTimeout(t));
        }
      } else {
        if (termination !== "client_disconnect") res.destroy();
      }
      if (termination !== "complete") o.abortUpstream();
      if (!upstream.destroyed && termination !== "complete") upstream.destroy();
      resolve({ termination, tokens: received, final, error });
    };

    /** Handles one worker event; returns false once the stream is over. */
    const handle = (data: string): boolean => {
      const fast = fastTokenText(data);
      if (fast !== undefined) {
        const seq = fastTokenSeq();
        if (seq !== expectedSeq) log.warn({ expected: expectedSeq, got: seq }, "stream.sequence_gap");
        expectedSeq = seq + 1;
        received++;
        buffer.push(fast);
        return true;
      }
      let msg: WorkerEvent;
      try {
        msg = JSON.parse(data) as WorkerEvent;
      } catch {
        log.warn({ data: data.slice(0, 200) }, "stream.bad_event");
        return true;
      }
      if (msg.finished === true) {
        if (msg.reason === "error" || msg.error !== undefined) {
          const code = typeof msg.error?.code === "string" ? msg.error.code : "worker_error";
          const message = typeof msg.error?.message === "string" ? msg.error.message : "the worker failed while decoding";
          finish("worker_error", undefined, { code, message });
        } else {
          // Text a worker held back (a possible stop string that was not one) ends the stream.
          if (typeof msg.token === "string" && msg.token !== "") buffer.push(msg.token);
          finish("complete", {
            reason: typeof msg.reason === "string" ? msg.reason : "stop",
            promptTokens: typeof msg.prompt_tokens === "number" ? msg.prompt_tokens : 0,
            completionTokens: typeof msg.completion_tokens === "number" ? msg.completion_tokens : received,
            cache: msg.cache,
          });
        }
        return false;
      }
      if (typeof msg.token !== "string") return true;
      if (msg.seq !== expectedSeq) log.warn({ expected: expectedSeq, got: msg.seq }, "stream.sequence_gap");
      expectedSeq = (typeof msg.seq === "number" ? msg.seq : expectedSeq) + 1;
      received++;
      buffer.push(msg.token);
      return true;
    };

    /** Parses events while the buffer has room; pauses the worker when it is full, resumes it when all is parsed. */
    const pump = () => {
      while (buffer.length < o.bufferTokens) {
        const data = reader.nextData();
        if (data === undefined) break;
        if (!handle(data)) return;
      }
      if (buffer.length >= o.bufferTokens) {
        if (!paused) {
          paused = true;
          upstream.pause();
          log.debug({ buffered: buffer.length }, "stream.buffer_high");
          if (!slow) {
            slow = true;
            log.warn({ buffered: buffer.length, tokens: received }, "stream.slow_client");
            o.onSlowClient?.();
          }
        }
      } else if (upstreamEnded) {
        return finish("worker_error", undefined, { code: "worker_error", message: "the worker stream ended before the last token" });
      } else if (paused) {
        paused = false;
        upstream.resume();
      }
      if (buffer.length > 0 && !flushQueued && !waitingDrain) {
        flushQueued = true;
        queueFlush(flush);
      }
    };

    const flush = () => {
      flushQueued = false;
      if (done || waitingDrain) return;
      // Nothing to write (e.g. after a drain): pump resumes a paused worker stream.
      if (buffer.length === 0) return pump();
      const n = buffer.length;
      const chunk = format.tokens(buffer);
      buffer = [];
      const ok = res.write(chunk);
      if (!firstSent) {
        firstSent = true;
        o.onFirstToken?.();
      }
      o.onTokens?.(n);
      if (!ok) {
        waitingDrain = true;
        waitStartMs = performance.now();
        deadline = setTimeout(() => {
          o.onWriteWait?.(o.writeTimeoutMs);
          log.warn({ write_timeout_ms: o.writeTimeoutMs, buffered: buffer.length }, "stream.write_timeout");
          finish("write_timeout");
        }, o.writeTimeoutMs);
      }
      pump();
    };

    const onDrain = () => {
      waitingDrain = false;
      clearTimeout(deadline);
      o.onWriteWait?.(performance.now() - waitStartMs);
      flush();
    };

    const onData = (chunk: Buffer | string) => {
      if (done) return;
      reader.push(typeof chunk === "string" ? chunk : decoder.write(chunk));
      if (reader.pendingLength > MAX_PENDING_CHARS) {
        if (reader.hasEvent) {
          log.warn({ buffered: buffer.length, pending_chars: reader.pendingLength }, "stream.buffer_overflow");
          return finish("buffer_overflow");
        }
        return finish("worker_error", undefined, { code: "worker_error", message: "worker sent an oversized event" });
      }
      pump();
    };

    // The end of the worker stream is judged once every event it sent has been handled.
    const onUpstreamEnd = () => {
      if (upstreamEnded || done) return;
      upstreamEnded = true;
      pump();
    };
    const onUpstreamError = (err: Error) => finish("worker_error", undefined, { code: "worker_error", message: `the worker stream failed: ${err.message}` });
    const onClientClose = () => {
      if (!res.writableFinished) finish("client_disconnect");
    };

    upstream.on("data", onData);
    upstream.on("end", onUpstreamEnd);
    upstream.on("close", onUpstreamEnd);
    upstream.on("error", onUpstreamError);
    res.on("drain", onDrain);
    res.on("close", onClientClose);
  });
}
