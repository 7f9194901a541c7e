import { errorReason, postJson, readSseEvents } from "../../../src/bench/load-client.js";

/**
 * One client stream of the chaos suite against `POST /coordinator/infer`, recorded as it goes (the
 * scenario watches the live record to time its fault) and classified at its end:
 *   complete     the final event with a normal reason
 *   error_event  the final event carries an error (the stream ended explicitly)
 *   rejected     an error status before any stream (429, 503, 502…)
 *   cut          the connection ended without a final event (expected only when the coordinator
 *                itself dies, or for a client the coordinator drops on purpose)
 *   client_abort the client hung up on purpose (random disconnects)
 *   hung         nothing ended it within `deadlineMs`: the failure the suite exists to catch
 */
export type StreamEnd = "running" | "complete" | "error_event" | "rejected" | "cut" | "client_abort" | "hung";

export interface StreamSpec {
  requestId: string;
  model: string;
  prompt: string;
  maxTokens: number;
  /** More request fields (sampling). */
  extra?: Record<string, unknown>;
  /** Hang up after this many tokens. */
  abortAfterTokens?: number;
  /** Hang up this long after sending (ms), wherever the request is by then. */
  abortAfterMs?: number;
  /** A stream still open after this long is hung (ms). */
  deadlineMs: number;
}

export interface StreamRecord {
  readonly spec: StreamSpec;
  end: StreamEnd;
  status: number;
  workerId: string | undefined;
  /** Prefill attempts the coordinator needed (x-route-decision), 1 when the first worker answered. */
  attempts: number;
  tokens: number;
  reason: string | undefined;
  errorCode: string | undefined;
  /** performance.now() marks (ms). */
  startMs: number;
  firstTokenMs: number | undefined;
  lastTokenMs: number | undefined;
  endMs: number | undefined;
}

export function newRecord(spec: StreamSpec): StreamRecord {
  return {
    spec, end: "running", status: 0, workerId: undefined, attempts: 1, tokens: 0, reason: undefined, errorCode: undefined,
    startMs: performance.now(), firstTokenMs: undefined, lastTokenMs: undefined, endMs: undefined,
  };
}

/** Runs one stream to its end, filling `rec` as events arrive; never throws. */
export async function runStream(url: string, rec: StreamRecord): Promise<StreamRecord> {
  const { spec } = rec;
  const abort = new AbortController();
  let why: "hung" | "client_abort" | undefined;
  const deadline = setTimeout(() => {
    why = "hung";
    abort.abort();
  }, spec.deadlineMs);
  const hangUp = spec.abortAfterMs === undefined ? undefined : setTimeout(() => {
    why = "client_abort";
    abort.abort();
  }, spec.abortAfterMs);
  try {
    const res = await postJson(`${url}/coordinator/infer`, { prompt: spec.prompt, model: spec.model, max_tokens: spec.maxTokens, ...spec.extra }, {
      headers: { "x-request-id": spec.requestId },
      // The deadline above bounds the stream (the load client turns the socket timers off).
      signal: abort.signal,
    });
    rec.status = res.statusCode;
    const worker = res.headers["x-worker-id"];
    rec.workerId = typeof worker === "string" ? worker : undefined;
    const attempts = /attempts=(\d+)/.exec(String(res.headers["x-route-decision"] ?? ""));
    if (attempts) rec.attempts = Number(attempts[1]);
    if (res.statusCode !== 200) {
      const body = await res.body.text();
      const reason = errorReason(body, res.statusCode);
      rec.errorCode = reason === `http_${res.statusCode}` ? body.slice(0, 80) : reason;
      rec.end = "rejected";
      return rec;
    }
    await readSseEvents(res.body, (data, now) => {
      const m = JSON.parse(data) as { token?: string; finished?: boolean; reason?: string; error?: { code?: string } };
      if (m.finished === false && typeof m.token === "string") {
        rec.firstTokenMs ??= now;
        rec.lastTokenMs = now;
        rec.tokens++;
        if (spec.abortAfterTokens !== undefined && rec.tokens >= spec.abortAfterTokens) {
          why = "client_abort";
          abort.abort();
        }
      } else if (m.finished === true) {
        rec.reason = m.reason;
        if (m.reason === "error" || m.error !== undefined) {
          rec.end = "error_event";
          rec.errorCode = m.error?.code;
        } else {
          rec.end = "complete";
        }
      }
    });
    if (rec.end === "running") rec.end = "cut";
  } catch (err) {
    if (rec.end === "running") {
      rec.end = why ?? "cut";
      if (why === undefined) rec.errorCode = (err as Error).message.slice(0, 80);
    }
  } finally {
    clearTimeout(deadline);
    clearTimeout(hangUp);
    rec.endMs = performance.now();
  }
  return rec;
}

/** Streams started together; `records` fill live, `done` resolves when every one has ended. */
export interface Wave {
  readonly records: StreamRecord[];
  readonly done: Promise<StreamRecord[]>;
}

export function launchWave(url: string, specs: StreamSpec[]): Wave {
  const records = specs.map(newRecord);
  return { records, done: Promise.all(records.map((r) => runStream(url, r))) };
}

/** Tokens per second of one stream while it streamed (first to last token), or undefined. */
export function streamTokensPerS(r: StreamRecord): number | undefined {
  if (r.firstTokenMs === undefined || r.lastTokenMs === undefined || r.tokens < 2 || r.lastTokenMs <= r.firstTokenMs) return undefined;
  return ((r.tokens - 1) * 1000) / (r.lastTokenMs - r.firstTokenMs);
}
