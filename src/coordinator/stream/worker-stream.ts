import type { Logger } from "../../common/logger.js";
import { isClientErrorCode } from "../../protocol/error-mapping.js";
import { ServingError } from "../../protocol/serving-error.js";
import { toUpstream, type Upstream, type UpstreamSink, type UpstreamSource } from "./upstream.js";

/**
 * The worker side of one answer, as the relay (streaming) and the collector (one JSON body) both
 * read it: the current worker's decode stream, the first-token and stall timeouts that watch it,
 * and the failover that swaps in the stream of the worker continuing the answer. The reader only
 * parses what arrives and says when it holds the worker back on purpose (a paused relay), so that
 * its silence then is not a stall.
 */
export interface WorkerFailure {
  code: string;
  message: string;
  /** The worker's connection closed or reset mid-stream: it died (not a stall, not an error event). */
  died?: boolean;
}

export interface WorkerStreamOptions {
  upstream: UpstreamSource;
  log: Logger;
  /** Longest wait for a stream's first event, and between two events, before the worker counts as stalled (ms). */
  firstTokenTimeoutMs?: number;
  stallTimeoutMs?: number;
  /** Continues the answer on another worker; resolves with its stream, or undefined to end with the error. */
  failover?(failure: WorkerFailure, relayed: { text: string; tokens: number }, signal: AbortSignal): Promise<UpstreamSource | undefined>;
  /** Called after each successful failover. */
  onFailover?(): void;
}

export interface WorkerStreamReader {
  data(chunk: Buffer | string): void;
  /** The current worker's stream ended or closed. */
  ended(): void;
  /** Another worker continues the answer: per-stream parse state starts over. */
  switched(): void;
  /** The worker failed and nobody continues: the answer ends with the error. */
  failed(error: WorkerFailure): void;
  /** What the client has been given so far, for the worker that continues. */
  relayed(): { text: string; tokens: number };
  /** The reader holds the worker back (paused): its silence is not a stall. */
  holding(): boolean;
}

/**
 * The worker side's states: `live` (the current worker's stream is open), `ended` (it ended; what it
 * sent may still wait in the reader), `recovering` (between a failure and the next worker's stream,
 * or the end), `closed` (the answer is over). Only `live` is watched for stalls.
 */
export type WorkerStreamState = "live" | "ended" | "recovering" | "closed";

export class WorkerStream {
  /** Workers that took over the answer mid-way. */
  failovers = 0;
  state: WorkerStreamState = "live";
  private upstream: Upstream;
  private firstOfUpstream = true;
  private stallTimer: NodeJS.Timeout | undefined;
  /** When the current worker last sent data, or its watch last started (performance.now(), ms). */
  private lastAliveMs = 0;
  private readonly gone = new AbortController();

  constructor(private readonly o: WorkerStreamOptions, private readonly reader: WorkerStreamReader) {
    this.upstream = toUpstream(o.upstream);
    this.attach();
  }

  /** Between a failure and the next worker's stream (or the end): nothing is read meanwhile. */
  get recovering(): boolean {
    return this.state === "recovering";
  }

  /**
   * Data arrived from the current worker: it is alive, and the stall clock starts again. Per chunk
   * this only notes the time: the armed timer, when it fires, re-arms for what is left of the
   * silence (a timer re-armed per token was a measurable share of the relay's CPU).
   */
  alive(): void {
    this.lastAliveMs = performance.now();
    if (this.firstOfUpstream) {
      // The first-token timeout gives way to the stall timeout.
      this.firstOfUpstream = false;
      this.armStall();
    } else if (this.stallTimer === undefined) {
      this.armStall();
    }
  }

  /** Holds the worker back (TCP pushes back to it); no stall is counted meanwhile. */
  pause(): void {
    this.stopStall();
    this.upstream.pause();
  }

  resume(): void {
    this.upstream.resume();
    this.armStall();
  }

  /** The current worker failed: continue on another one when allowed, else end with the error. */
  fail(error: WorkerFailure): void {
    if (this.state === "closed" || this.state === "recovering") return;
    // The request's own fault (grammar_dead_end, unsupported_characters, …): another worker would
    // answer the same, so the answer ends here with that code.
    if (this.o.failover === undefined || isClientErrorCode(error.code)) return this.reader.failed(error);
    this.state = "recovering";
    this.detach();
    if (!this.upstream.destroyed) this.upstream.destroy();
    void this.o.failover(error, this.reader.relayed(), this.gone.signal).then(
      (source) => {
        const next = source === undefined ? undefined : toUpstream(source);
        if (this.state === "closed") {
          next?.destroy();
          return;
        }
        if (next === undefined) return this.reader.failed(error);
        this.failovers++;
        this.o.onFailover?.();
        this.upstream = next;
        this.firstOfUpstream = true;
        this.reader.switched();
        this.state = "live";
        if (this.reader.holding()) next.pause();
        this.attach();
      },
      // A failover that refuses (the request made a second worker die) ends the answer with its own code.
      (err: unknown) => this.reader.failed(err instanceof ServingError ? { code: err.code, message: err.message } : error),
    );
  }

  /** The answer is over: stop listening, stop any failover in flight, and close the worker's stream unless it ended well. */
  close(destroyUpstream: boolean): void {
    this.state = "closed";
    this.detach();
    this.gone.abort();
    if (destroyUpstream && !this.upstream.destroyed) this.upstream.destroy();
  }

  /** One sink for every worker of the answer (the current one's events; a detached one delivers none). */
  private readonly sink: UpstreamSink = {
    data: (chunk) => {
      if (this.state !== "live") return;
      this.reader.data(chunk);
    },
    end: () => {
      if (this.state !== "live") return;
      this.state = "ended";
      this.stopStall();
      this.reader.ended();
    },
    error: (err) => {
      // The socket's own text goes to the log, not to the client.
      this.o.log.warn({ err: err.message }, "stream.worker_failed");
      this.fail({ code: "worker_error", message: "the worker stream failed", died: true });
    },
  };

  private attach(): void {
    this.upstream.attach(this.sink);
    this.armStall();
  }

  private detach(): void {
    this.stopStall();
    this.upstream.attach(undefined);
  }

  /** The worker must send within its timeout unless the reader itself holds it back: a full timeout from now. */
  private armStall(): void {
    this.stopStall();
    if (this.state !== "live" || this.reader.holding()) return;
    const ms = this.firstOfUpstream ? this.o.firstTokenTimeoutMs : this.o.stallTimeoutMs;
    if (ms === undefined) return;
    this.lastAliveMs = performance.now();
    this.waitStall(ms);
  }

  private waitStall(afterMs: number): void {
    const first = this.firstOfUpstream;
    this.stallTimer = setTimeout(() => {
      this.stallTimer = undefined;
      const ms = (first ? this.o.firstTokenTimeoutMs : this.o.stallTimeoutMs)!;
      // Data came since the timer was set: wait for the rest of the silence only.
      const silentMs = performance.now() - this.lastAliveMs;
      if (!first && silentMs < ms) return this.waitStall(Math.max(1, ms - silentMs));
      this.o.log.warn({ silent_ms: ms, first_token: first }, "stream.worker_stalled");
      this.fail({ code: "worker_stalled", message: `the worker sent nothing for ${ms} ms` });
    }, afterMs);
  }

  private stopStall(): void {
    clearTimeout(this.stallTimer);
    this.stallTimer = undefined;
  }
}
