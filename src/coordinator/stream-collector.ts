import type { ServerResponse } from "node:http";
import type { Readable } from "node:stream";
import { StringDecoder } from "node:string_decoder";
import type { Logger } from "../common/logger.js";
import { parseDecodeEvent } from "../protocol/decode-event.js";
import { SseParser } from "../protocol/sse.js";
import type { FinalInfo } from "./relay.js";

/**
 * The non-streaming counterpart of the relay: reads a worker's decode stream to its end and
 * returns the whole text, for APIs that answer with one JSON body. The client's socket is watched
 * all along: a client that hangs up cancels the worker's session at once (closing the decode
 * request), as in a stream. Memory is bounded by the worker's max_tokens and by MAX_TEXT_CHARS.
 */
export type CollectTermination = "complete" | "client_disconnect" | "worker_error";

export interface CollectResult {
  termination: CollectTermination;
  /** Workers that took over the answer mid-way. */
  failovers: number;
  text: string;
  /** Token events received. */
  tokens: number;
  final: FinalInfo | undefined;
  error: { code: string; message: string } | undefined;
}

export interface CollectOptions {
  upstream: Readable;
  res: ServerResponse;
  log: Logger;
  abortUpstream(): void;
  /** As for the relay: stall timeouts and continuing on another worker. */
  firstTokenTimeoutMs?: number;
  stallTimeoutMs?: number;
  failover?(failure: { code: string; message: string }, relayed: { text: string; tokens: number }, signal: AbortSignal): Promise<Readable | undefined>;
  promptTokens?: number;
  onFailover?(): void;
}

/** Far above what a context of tokens decodes to; a worker sending more is cut off. */
const MAX_TEXT_CHARS = 64 * 1024 * 1024;

export function collectStream(o: CollectOptions): Promise<CollectResult> {
  const { res, log } = o;
  return new Promise<CollectResult>((resolve) => {
    let upstream = o.upstream;
    let parser = new SseParser();
    let decoder = new StringDecoder("utf8");
    const parts: string[] = [];
    let chars = 0;
    let tokens = 0;
    let tokensBefore = 0;
    let done = false;
    let recovering = false;
    let failovers = 0;
    let firstOfUpstream = true;
    let stallTimer: NodeJS.Timeout | undefined;
    const gone = new AbortController();

    const detach = () => {
      clearTimeout(stallTimer);
      // A detached stream may still report its abort: it must never be an unhandled 'error'.
      upstream.on("error", ignoreError);
      upstream.off("data", onData);
      upstream.off("end", onUpstreamEnd);
      upstream.off("close", onUpstreamEnd);
      upstream.off("error", onUpstreamError);
    };
    const attach = () => {
      upstream.on("data", onData);
      upstream.on("end", onUpstreamEnd);
      upstream.on("close", onUpstreamEnd);
      upstream.on("error", onUpstreamError);
      armStall();
    };
    const armStall = () => {
      clearTimeout(stallTimer);
      const ms = firstOfUpstream ? o.firstTokenTimeoutMs : o.stallTimeoutMs;
      if (done || recovering || ms === undefined) return;
      stallTimer = setTimeout(() => {
        log.warn({ silent_ms: ms, first_token: firstOfUpstream }, "stream.worker_stalled");
        workerFailed({ code: "worker_stalled", message: `the worker sent nothing for ${ms} ms` });
      }, ms);
    };

    const finish = (termination: CollectTermination, final?: FinalInfo, error?: { code: string; message: string }) => {
      if (done) return;
      done = true;
      detach();
      gone.abort();
      res.off("close", onClientClose);
      if (termination !== "complete") {
        o.abortUpstream();
        if (!upstream.destroyed) upstream.destroy();
      }
      resolve({ termination, failovers, text: parts.join(""), tokens, final, error });
    };

    const workerFailed = (error: { code: string; message: string }) => {
      if (done || recovering) return;
      if (o.failover === undefined) return finish("worker_error", undefined, error);
      recovering = true;
      detach();
      if (!upstream.destroyed) upstream.destroy();
      void o.failover(error, { text: parts.join(""), tokens }, gone.signal).then(
        (next) => {
          if (done) {
            next?.destroy();
            return;
          }
          if (next === undefined) return finish("worker_error", undefined, error);
          failovers++;
          o.onFailover?.();
          upstream = next;
          parser = new SseParser();
          decoder = new StringDecoder("utf8");
          tokensBefore = tokens;
          firstOfUpstream = true;
          recovering = false;
          attach();
        },
        () => finish("worker_error", undefined, error),
      );
    };

    const onData = (chunk: Buffer | string) => {
      if (done || recovering) return;
      firstOfUpstream = false;
      armStall();
      for (const ev of parser.push(typeof chunk === "string" ? chunk : decoder.write(chunk))) {
        const e = parseDecodeEvent(ev.data);
        if (e === null) {
          log.warn({ data: ev.data.slice(0, 200) }, "stream.bad_event");
          continue;
        }
        if (e.kind === "token") {
          tokens++;
          parts.push(e.text);
          chars += e.text.length;
        } else if (e.kind === "end") {
          parts.push(e.text);
          return finish("complete", {
            reason: e.reason,
            promptTokens: failovers > 0 && o.promptTokens !== undefined ? o.promptTokens : (e.promptTokens ?? 0),
            completionTokens: tokensBefore + (e.completionTokens ?? tokens - tokensBefore),
            ...(e.cache !== undefined ? { cache: e.cache } : {}),
          });
        } else {
          return workerFailed({ code: e.code, message: e.message });
        }
      }
      if (chars > MAX_TEXT_CHARS || parser.pendingLength > 1 << 20) {
        finish("worker_error", undefined, { code: "worker_error", message: "the worker sent more than a response can hold" });
      }
    };
    const onUpstreamEnd = () => workerFailed({ code: "worker_error", message: "the worker stream ended before the last token" });
    const onUpstreamError = (err: Error) => workerFailed({ code: "worker_error", message: `the worker stream failed: ${err.message}` });
    const onClientClose = () => {
      if (!res.writableFinished) finish("client_disconnect");
    };

    attach();
    res.on("close", onClientClose);
    if (res.destroyed) onClientClose();
  });
}

function ignoreError(): void {}
