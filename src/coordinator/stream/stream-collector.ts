import type { ServerResponse } from "node:http";
import type { Logger } from "../../common/logger.js";
import type { LogprobContent } from "../../protocol/token-logprobs.js";
import { DecodeReader } from "./decode-reader.js";
import type { FinalInfo } from "./relay.js";
import { WorkerStream, type WorkerFailure, type WorkerStreamOptions } from "./worker-stream.js";
import type { UpstreamSource } from "./upstream.js";

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
  /** Every token's logprob entry, in order, when the request asked for them. */
  logprobs: LogprobContent[];
}

export interface CollectOptions {
  upstream: UpstreamSource;
  res: ServerResponse;
  log: Logger;
  abortUpstream(): void;
  /** As for the relay: stall timeouts and continuing on another worker (worker-stream.ts). */
  firstTokenTimeoutMs?: number;
  stallTimeoutMs?: number;
  failover?: WorkerStreamOptions["failover"];
  promptTokens?: number;
  onFailover?(): void;
}

/** Far above what a context of tokens decodes to; a worker sending more is cut off. */
const MAX_TEXT_CHARS = 64 * 1024 * 1024;

export function collectStream(o: CollectOptions): Promise<CollectResult> {
  const { res, log } = o;
  return new Promise<CollectResult>((resolve) => {
    const events = new DecodeReader(log);
    const parts: string[] = [];
    const logprobs: LogprobContent[] = [];
    let chars = 0;
    let tokens = 0;
    let tokensBefore = 0;
    let done = false;

    const finish = (termination: CollectTermination, final?: FinalInfo, error?: WorkerFailure) => {
      if (done) return;
      done = true;
      res.off("close", onClientClose);
      if (termination !== "complete") o.abortUpstream();
      worker.close(termination !== "complete");
      resolve({ termination, failovers: worker.failovers, text: parts.join(""), tokens, final, error, logprobs });
    };

    const worker: WorkerStream = new WorkerStream(o, {
      data: (chunk) => {
        worker.alive();
        events.push(chunk);
        for (let e = events.next(); e !== undefined; e = events.next()) {
          if (typeof e === "string") {
            tokens++;
            parts.push(e);
            chars += e.length;
            const lp = events.tokenLogprobs;
            if (lp !== undefined) for (const l of lp) logprobs.push(l);
          } else if (e.kind === "end") {
            parts.push(e.text);
            return finish("complete", {
              reason: e.reason,
              promptTokens: worker.failovers > 0 && o.promptTokens !== undefined ? o.promptTokens : (e.promptTokens ?? 0),
              completionTokens: tokensBefore + (e.completionTokens ?? tokens - tokensBefore),
              ...(e.cache !== undefined ? { cache: e.cache } : {}),
            });
          } else {
            return worker.fail({ code: e.code, message: e.message });
          }
        }
        if (chars > MAX_TEXT_CHARS || events.pendingLength > 1 << 20) {
          finish("worker_error", undefined, { code: "worker_error", message: "the worker sent more than a response can hold" });
        }
      },
      ended: () => worker.fail({ code: "worker_error", message: "the worker stream ended before the last token", died: true }),
      switched: () => {
        events.restart();
        tokensBefore = tokens;
      },
      failed: (error) => finish("worker_error", undefined, error),
      relayed: () => ({ text: parts.join(""), tokens }),
      holding: () => false,
    });
    const onClientClose = () => {
      if (!res.writableFinished) finish("client_disconnect");
    };

    res.on("close", onClientClose);
    if (res.destroyed) onClientClose();
  });
}
