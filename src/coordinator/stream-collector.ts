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
}

/** Far above what a context of tokens decodes to; a worker sending more is cut off. */
const MAX_TEXT_CHARS = 64 * 1024 * 1024;

export function collectStream(o: CollectOptions): Promise<CollectResult> {
  const { upstream, res, log } = o;
  return new Promise<CollectResult>((resolve) => {
    const parser = new SseParser();
    const decoder = new StringDecoder("utf8");
    const parts: string[] = [];
    let chars = 0;
    let tokens = 0;
    let done = false;

    const finish = (termination: CollectTermination, final?: FinalInfo, error?: { code: string; message: string }) => {
      if (done) return;
      done = true;
      upstream.off("data", onData);
      upstream.off("end", onUpstreamEnd);
      upstream.off("close", onUpstreamEnd);
      upstream.off("error", onUpstreamError);
      res.off("close", onClientClose);
      if (termination !== "complete") {
        o.abortUpstream();
        if (!upstream.destroyed) upstream.destroy();
      }
      resolve({ termination, text: parts.join(""), tokens, final, error });
    };

    const onData = (chunk: Buffer | string) => {
      if (done) return;
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
          return finish("complete", { reason: e.reason, promptTokens: e.promptTokens ?? 0, completionTokens: e.completionTokens ?? tokens, cache: e.cache });
        } else {
          return finish("worker_error", undefined, { code: e.code, message: e.message });
        }
      }
      if (chars > MAX_TEXT_CHARS || parser.pendingLength > 1 << 20) {
        finish("worker_error", undefined, { code: "worker_error", message: "the worker sent more than a response can hold" });
      }
    };
    const onUpstreamEnd = () => finish("worker_error", undefined, { code: "worker_error", message: "the worker stream ended before the last token" });
    const onUpstreamError = (err: Error) => finish("worker_error", undefined, { code: "worker_error", message: `the worker stream failed: ${err.message}` });
    const onClientClose = () => {
      if (!res.writableFinished) finish("client_disconnect");
    };

    upstream.on("data", onData);
    upstream.on("end", onUpstreamEnd);
    upstream.on("close", onUpstreamEnd);
    upstream.on("error", onUpstreamError);
    res.on("close", onClientClose);
    if (res.destroyed) onClientClose();
  });
}
