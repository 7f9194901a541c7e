import type { ServerResponse } from "node:http";
import type { Readable } from "node:stream";
import { StringDecoder } from "node:string_decoder";
import type { Logger } from "../common/logger.js";
import { parseDecodeEvent } from "../protocol/decode-event.js";
import type { LogprobContent } from "../protocol/token-logprobs.js";
import { SseReader } from "../protocol/sse.js";
import { fastTokenSeq, fastTokenText } from "../protocol/worker-token-event.js";
import { WorkerStream, type WorkerStreamOptions } from "./worker-stream.js";

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
  /** Longest wait for a stream's first token, and between two tokens, before the worker counts as stalled (ms). */
  firstTokenTimeoutMs?: number;
  stallTimeoutMs?: number;
  /** Continues the answer on another worker (worker-stream.ts). */
  failover?: WorkerStreamOptions["failover"];
  /** Prompt tokens of the original request, reported when a failover replaced the worker. */
  promptTokens?: number;
  /** Called after each successful failover. */
  onFailover?(): void;
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
  const { res, format, log } = o;
  return new Promise<RelayResult>((resolve) => {
    let reader = new SseReader();
    let decoder = new StringDecoder("utf8");
    let buffer: string[] = [];
    // Logprob entries of the buffered tokens (only when the request asked for them).
    let logprobs: LogprobContent[] = [];
    let received = 0;
    /** Tokens received from earlier workers of this stream (their counts precede the current one's). */
    let receivedBefore = 0;
    /** All token text received, kept only when a failover may need to continue it. */
    let relayedText = "";
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
    const keepText = o.failover !== undefined;

    const finish = (termination: Termination, final?: FinalInfo, error?: { code: string; message: string }) => {
      if (done) return;
      done = true;
      clearTimeout(deadline);
      res.off("drain", onDrain);
      res.off("close", onClientClose);
      if (termination === "complete" || termination === "worker_error") {
        const n = buffer.length;
        let tail = n > 0 || logprobs.length > 0 ? format.tokens(buffer, logprobs) : "";
        buffer = [];
        logprobs = [];
        tail += termination === "complete" ? format.end(final!) : format.error(error!.code, error!.message);
        if (!firstSent && received > 0) o.onFirstToken?.();
        if (n > 0) o.onTokens?.(n);
        res.end(tail);
        if (!res.writableFinished) {
          const t = setTimeout(() => res.destroy(), o.writeTimeoutMs);
          res.once("close", () => clearTimeout(t));
        }
      } else {
        if (termination !== "client_disconnect") res.destroy();
      }
      if (termination !== "complete") o.abortUpstream();
      worker.close(termination !== "complete");
      resolve({ termination, failovers: worker.failovers, tokens: received, final, error });
    };

    const push = (text: string) => {
      received++;
      buffer.push(text);
      if (keepText) relayedText += text;
    };

    /** Handles one worker event; returns false once the stream is over. */
    const handle = (data: string): boolean => {
      const fast = fastTokenText(data);
      if (fast !== undefined) {
        const seq = fastTokenSeq();
        if (seq !== expectedSeq) log.warn({ expected: expectedSeq, got: seq }, "stream.sequence_gap");
        expectedSeq = seq + 1;
        push(fast);
        return true;
      }
      const e = parseDecodeEvent(data);
      if (e === null) {
        log.warn({ data: data.slice(0, 200) }, "stream.bad_event");
        return true;
      }
      if (e.kind === "error") {
        worker.fail({ code: e.code, message: e.message });
        return false;
      }
      if (e.kind === "end") {
        if (e.text !== "") buffer.push(e.text);
        finish("complete", {
          reason: e.reason,
          promptTokens: worker.failovers > 0 && o.promptTokens !== undefined ? o.promptTokens : (e.promptTokens ?? 0),
          completionTokens: receivedBefore + (e.completionTokens ?? received - receivedBefore),
          ...(e.cache !== undefined ? { cache: e.cache } : {}),
        });
        return false;
      }
      if (e.seq !== expectedSeq) log.warn({ expected: expectedSeq, got: e.seq }, "stream.sequence_gap");
      expectedSeq = (e.seq ?? expectedSeq) + 1;
      push(e.text);
      if (e.logprobs !== undefined) for (const l of e.logprobs) logprobs.push(l);
      return true;
    };

    /** Parses events while the buffer has room; pauses the worker when it is full, resumes it when all is parsed. */
    const pump = () => {
      if (!worker.recovering) {
        while (buffer.length < o.bufferTokens) {
          const data = reader.nextData();
          if (data === undefined) break;
          if (!handle(data)) return;
          if (worker.recovering) break;
        }
      }
      if (!worker.recovering) {
        if (buffer.length >= o.bufferTokens) {
          if (!paused) {
            paused = true;
            worker.pause();
            log.debug({ buffered: buffer.length }, "stream.buffer_high");
            if (!slow) {
              slow = true;
              log.warn({ buffered: buffer.length, tokens: received }, "stream.slow_client");
              o.onSlowClient?.();
            }
          }
        } else if (upstreamEnded) {
          worker.fail({ code: "worker_error", message: "the worker stream ended before the last token", died: true });
        } else if (paused) {
          paused = false;
          worker.resume();
        }
      }
      if (buffer.length > 0 && !flushQueued && !waitingDrain) {
        flushQueued = true;
        queueFlush(flush);
      }
    };

    const flush = () => {
      flushQueued = false;
      if (done || waitingDrain) return;
      if (buffer.length === 0) return pump();
      const n = buffer.length;
      const chunk = format.tokens(buffer, logprobs);
      buffer = [];
      logprobs = [];
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

    const worker: WorkerStream = new WorkerStream(o, {
      data: (chunk) => {
        reader.push(typeof chunk === "string" ? chunk : decoder.write(chunk));
        if (reader.pendingLength > MAX_PENDING_CHARS) {
          if (reader.hasEvent) {
            log.warn({ buffered: buffer.length, pending_chars: reader.pendingLength }, "stream.buffer_overflow");
            return finish("buffer_overflow");
          }
          return worker.fail({ code: "worker_error", message: "worker sent an oversized event" });
        }
        worker.alive();
        pump();
      },
      ended: () => {
        if (upstreamEnded) return;
        upstreamEnded = true;
        pump();
      },
      // Events parsed from the failed stream stay in the buffer and reach the client; unparsed ones are dropped.
      switched: () => {
        reader = new SseReader();
        decoder = new StringDecoder("utf8");
        expectedSeq = 0;
        receivedBefore = received;
        upstreamEnded = false;
      },
      failed: (error) => finish("worker_error", undefined, error),
      relayed: () => ({ text: relayedText, tokens: received }),
      holding: () => paused,
    });
    const onClientClose = () => {
      if (!res.writableFinished) finish("client_disconnect");
    };

    res.on("drain", onDrain);
    res.on("close", onClientClose);
  });
}

