import type { Readable } from "node:stream";

/**
 * The worker side of one answer as the relay and the collector read it: bytes pushed to one sink,
 * which can hold the worker back (pause: TCP then pushes back to it) and close it. The coordinator's
 * own exchanges (fleet/worker-exchange.ts) implement it over undici's dispatch handler, without a
 * stream object per answer; any Readable (a test's PassThrough, a synthesized end) is adapted.
 */
export interface UpstreamSink {
  /** A chunk of the response body (SSE bytes), in order. */
  data(chunk: Buffer | string): void;
  /** The body ended, or the exchange closed without an error. */
  end(): void;
  /** The exchange failed mid-body (the connection closed or reset). */
  error(err: Error): void;
}

export interface Upstream {
  /** Delivers what arrives to `sink` from now on; undefined detaches (nothing more is delivered, errors included). */
  attach(sink: UpstreamSink | undefined): void;
  pause(): void;
  resume(): void;
  /** Closes the exchange (the worker cancels the session); idempotent. */
  destroy(): void;
  readonly destroyed: boolean;
}

/** What a relay, a collector or a failover may be handed. */
export type UpstreamSource = Upstream | Readable;

export function toUpstream(source: UpstreamSource): Upstream {
  return typeof (source as Upstream).attach === "function" ? (source as Upstream) : new ReadableUpstream(source as Readable);
}

/** A Readable as an upstream: its data, end/close and error events go to the sink. */
class ReadableUpstream implements Upstream {
  private sink: UpstreamSink | undefined;

  constructor(private readonly r: Readable) {}

  get destroyed(): boolean {
    return this.r.destroyed;
  }

  attach(sink: UpstreamSink | undefined): void {
    const { r } = this;
    const old = this.sink;
    if (old !== undefined) {
      // A detached stream may still report its abort: it must never be an unhandled 'error'.
      r.on("error", ignoreError);
      r.off("data", old.data);
      r.off("end", old.end);
      r.off("close", old.end);
      r.off("error", old.error);
    }
    this.sink = sink;
    if (sink === undefined) return;
    r.on("data", sink.data);
    r.on("end", sink.end);
    r.on("close", sink.end);
    r.on("error", sink.error);
  }

  pause(): void {
    this.r.pause();
  }

  resume(): void {
    this.r.resume();
  }

  destroy(): void {
    if (!this.r.destroyed) this.r.destroy();
  }
}

function ignoreError(): void {}
