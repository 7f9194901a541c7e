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
  /** Longest wait for a stream's first token, and between two tokens, before the worker counts as stalled (ms). */
  firstTokenTimeoutMs?: number;
  stallTimeoutMs?: number;
  /** Continues the answer on another worker; resolves with its stream, or undefined to end with the error. */
  failover?(failure: { code: string; message: string }, relayed: { text: string; tokens: number }, signal: AbortSignal): Promise<Readable | undefined>;
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
  const { res, format, log } = o;
  return new Promise<RelayResult>((resolve) => {
    let upstream = o.upstream;
    let reader = new SseReader();
    let decoder = new StringDecoder("utf8");
    let buffer: string[] = [];
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
    let recovering = false;
    let failovers = 0;
    let firstSent = false;
    let firstOfUpstream = true;
    let slow = false;
    let waitStartMs = 0;
    let deadline: NodeJS.Timeout | undefined;
    let stallTimer: NodeJS.Timeout | undefined;
    const gone = new AbortController();
    const keepText = o.failover !== undefined;

    const detach = () => {
      clearTimeout(stallTimer);
      // A detached stream may still report its abort: it must never be an unhandled 'error'.
      upstream.on("error", ignoreError);
      upstream.off("data", onData);
      upstream.off("end", onUpstreamEnd);
      upstream.off("error", onUpstreamError);
      upstream.off("close", onUpstreamEnd);
    };

    const attach = () => {
      upstream.on("data", onData);
      upstream.on("end", onUpstreamEnd);
      upstream.on("close", onUpstreamEnd);
      upstream.on("error", onUpstreamError);
      armStall();
    };

    /** The worker must send within its timeout unless the relay itself holds it back (paused). */
    const armStall = () => {
      clearTimeout(stallTimer);
      if (done || paused || recovering || (o.stallTimeoutMs === undefined && o.firstTokenTimeoutMs === undefined)) return;
      const ms = firstOfUpstream ? o.firstTokenTimeoutMs : o.stallTimeoutMs;
      if (ms === undefined) return;
      stallTimer = setTimeout(() => {
        log.warn({ silent_ms: ms, first_token: firstOfUpstream }, "stream.worker_stalled");
        workerFailed({ code: "worker_stalled", message: `the worker sent nothing for ${ms} ms` });
      }, ms);
    };

    const finish = (termination: Termination, final?: FinalInfo, error?: { code: string; message: string }) => {
      if (done) return;
      done = true;
      detach();
      clearTimeout(deadline);
      res.off("drain", onDrain);
      res.off("close", onClientClose);
      gone.abort();
      if (termination === "complete" || termination === "worker_error") {
        const n = buffer.length;
        let tail = n > 0 ? format.tokens(buffer) : "";
        buffer = [];
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
      if (!upstream.destroyed && termination !== "complete") upstream.destroy();
      resolve({ termination, failovers, tokens: received, final, error });
    };

    /** The current worker failed: continue on another one when allowed, else end with the error. */
    const workerFailed = (error: { code: string; message: string }) => {
      if (done || recovering) return;
      if (o.failover === undefined) return finish("worker_error", undefined, error);
      recovering = true;
      detach();
      if (!upstream.destroyed) upstream.destroy();
      // Events parsed from the failed stream stay in the buffer and reach the client; unparsed ones are dropped.
      void o.failover(error, { text: relayedText, tokens: received }, gone.signal).then(
        (next) => {
          if (done) {
            next?.destroy();
            return;
          }
          if (next === undefined) return finish("worker_error", undefined, error);
          failovers++;
          o.onFailover?.();
          upstream = next;
          reader = new SseReader();
          decoder = new StringDecoder("utf8");
          expectedSeq = 0;
          receivedBefore = received;
          upstreamEnded = false;
          firstOfUpstream = true;
          recovering = false;
          if (paused) upstream.pause();
          attach();
        },
        () => finish("worker_error", undefined, error),
      );
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
          workerFailed({ code, message });
        } else {
          if (typeof msg.token === "string" && msg.token !== "") buffer.push(msg.token);
          const completion = typeof msg.completion_tokens === "number" ? msg.completion_tokens : received - receivedBefore;
          finish("complete", {
            reason: typeof msg.reason === "string" ? msg.reason : "stop",
            promptTokens: failovers > 0 && o.promptTokens !== undefined ? o.promptTokens : typeof msg.prompt_tokens === "number" ? msg.prompt_tokens : 0,
            completionTokens: receivedBefore + completion,
            ...(msg.cache !== undefined ? { cache: msg.cache } : {}),
          });
        }
        return false;
      }
      if (typeof msg.token !== "string") return true;
      if (msg.seq !== expectedSeq) log.warn({ expected: expectedSeq, got: msg.seq }, "stream.sequence_gap");
      expectedSeq = (typeof msg.seq === "number" ? msg.seq : expectedSeq) + 1;
      push(msg.token);
      return true;
    };

    /** Parses events while the buffer has room; pauses the worker when it is full, resumes it when all is parsed. */
    const pump = () => {
      if (!recovering) {
        while (buffer.length < o.bufferTokens) {
          const data = reader.nextData();
          if (data === undefined) break;
          if (!handle(data)) return;
          if (recovering) break;
        }
      }
      if (!recovering) {
        if (buffer.length >= o.bufferTokens) {
          if (!paused) {
            paused = true;
            clearTimeout(stallTimer);
            upstream.pause();
            log.debug({ buffered: buffer.length }, "stream.buffer_high");
            if (!slow) {
              slow = true;
              log.warn({ buffered: buffer.length, tokens: received }, "stream.slow_client");
              o.onSlowClient?.();
            }
          }
        } else if (upstreamEnded) {
          workerFailed({ code: "worker_error", message: "the worker stream ended before the last token" });
        } else if (paused) {
          paused = false;
          upstream.resume();
          armStall();
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
      if (done || recovering) return;
      firstOfUpstream = false;
      reader.push(typeof chunk === "string" ? chunk : decoder.write(chunk));
      if (reader.pendingLength > MAX_PENDING_CHARS) {
        if (reader.hasEvent) {
          log.warn({ buffered: buffer.length, pending_chars: reader.pendingLength }, "stream.buffer_overflow");
          return finish("buffer_overflow");
        }
        return workerFailed({ code: "worker_error", message: "worker sent an oversized event" });
      }
      armStall();
      pump();
    };

    const onUpstreamEnd = () => {
      if (upstreamEnded || done || recovering) return;
      upstreamEnded = true;
      pump();
    };
    const onUpstreamError = (err: Error) => workerFailed({ code: "worker_error", message: `the worker stream failed: ${err.message}` });
    const onClientClose = () => {
      if (!res.writableFinished) finish("client_disconnect");
    };

    attach();
    res.on("drain", onDrain);
    res.on("close", onClientClose);
  });
}

function ignoreError(): void {}
