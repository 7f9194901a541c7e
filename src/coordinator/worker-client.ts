import { Agent, request, errors as undiciErrors, type Dispatcher } from "undici";
import { ServingError } from "../common/serving-error.js";
import { isErrorCode } from "../common/error-mapping.js";
import type { DrainListing, HandoffEntry, PrefillRequest, PrefillResponse } from "../protocol/worker-api.js";

/**
 * HTTP toward workers, over one keep-alive agent (undici: cheaper per stream than node:http at
 * hundreds of streams). Failures are classified once here:
 *   - `WorkerFault`: the worker or the network failed (connect error, 5xx, timeout) → another
 *     worker may succeed, and the worker is suspect;
 *   - `ServingError` with a 4xx code: the request itself is wrong → no retry;
 *   - `ServingError` with a 503 capacity code: this worker is full → another may not be.
 */
export class WorkerFault extends Error {
  constructor(
    message: string,
    readonly kind: "connect" | "timeout" | "status" | "protocol" | "aborted",
    readonly status?: number,
  ) {
    super(message);
    this.name = "WorkerFault";
  }
}

export interface WorkerClientOptions {
  connectTimeoutMs: number;
  prefillTimeoutMs: number;
  /** Added to every request (cluster token). */
  headers?: Record<string, string>;
}

export interface CallOptions {
  requestId: string;
  signal: AbortSignal;
  headers?: Record<string, string>;
}

const CAPACITY_CODES = new Set<string>(["worker_sessions_full", "worker_kv_cache_full", "session_kv_limit", "draining"]);

export class WorkerClient {
  readonly agent: Agent;

  constructor(private readonly o: WorkerClientOptions) {
    this.agent = new Agent({
      connect: { timeout: o.connectTimeoutMs },
      keepAliveTimeout: 30_000,
      keepAliveMaxTimeout: 60_000,
      // One connection per concurrent stream (HTTP/1.1 has no multiplexing); no cap here, the
      // admission limits bound the count.
      connections: null,
      pipelining: 1,
    });
  }

  private headers(o: CallOptions): Record<string, string> {
    return { "content-type": "application/json", "x-request-id": o.requestId, ...this.o.headers, ...o.headers };
  }

  async prefill(workerUrl: string, body: PrefillRequest, o: CallOptions): Promise<PrefillResponse> {
    const res = await this.call(workerUrl, "/worker/prefill", body, o, this.o.prefillTimeoutMs);
    const text = await readText(res, o.signal);
    if (res.statusCode !== 200) throw statusError(res.statusCode, text);
    try {
      return JSON.parse(text) as PrefillResponse;
    } catch {
      throw new WorkerFault("prefill answered non-JSON", "protocol", res.statusCode);
    }
  }

  /** Starts a decode stream; resolves once the worker answered 200 and the SSE body flows. */
  async decode(workerUrl: string, sessionId: string, maxTokens: number | undefined, o: CallOptions): Promise<Dispatcher.ResponseData["body"]> {
    const res = await this.call(workerUrl, "/worker/decode", { session_id: sessionId, max_tokens: maxTokens }, o, this.o.prefillTimeoutMs);
    if (res.statusCode !== 200) throw statusError(res.statusCode, await readText(res, o.signal));
    return res.body;
  }

  /** Asks a worker to drain; it answers with its cached sequences for a handoff. */
  async drain(workerUrl: string, requestId: string, timeoutMs: number): Promise<DrainListing> {
    const signal = AbortSignal.timeout(timeoutMs);
    const res = await this.call(workerUrl, "/worker/drain", {}, { requestId, signal }, timeoutMs);
    const text = await readText(res, signal);
    if (res.statusCode !== 200) throw statusError(res.statusCode, text);
    return JSON.parse(text) as DrainListing;
  }

  /** Hands one cached sequence to a worker, which re-prefills its tokens and keeps it. */
  async adopt(workerUrl: string, body: HandoffEntry & { model: string }, requestId: string, timeoutMs: number): Promise<void> {
    const signal = AbortSignal.timeout(timeoutMs);
    const res = await this.call(workerUrl, "/worker/adopt", body, { requestId, signal }, timeoutMs);
    const text = await readText(res, signal);
    if (res.statusCode !== 200) throw statusError(res.statusCode, text);
  }

  /** Best effort: frees a session the coordinator no longer wants (errors are ignored). */
  async cancel(workerUrl: string, sessionId: string, requestId: string): Promise<void> {
    try {
      const res = await request(`${workerUrl}/worker/cancel`, {
        method: "POST", dispatcher: this.agent, body: JSON.stringify({ session_id: sessionId }),
        headers: this.headers({ requestId, signal: AbortSignal.timeout(5000) }),
        headersTimeout: 5000, bodyTimeout: 5000,
      });
      await res.body.dump();
    } catch {
      // The worker's TTL sweep frees it anyway.
    }
  }

  private async call(workerUrl: string, path: string, body: unknown, o: CallOptions, timeoutMs: number): Promise<Dispatcher.ResponseData> {
    try {
      return await request(`${workerUrl}${path}`, {
        method: "POST",
        dispatcher: this.agent,
        body: JSON.stringify(body),
        headers: this.headers(o),
        signal: o.signal,
        headersTimeout: timeoutMs,
        // Streams pause under backpressure for as long as a slow client allows; the relay's
        // write deadline bounds that, not the socket's idle time.
        bodyTimeout: 0,
      });
    } catch (err) {
      throw classify(err, o.signal);
    }
  }

  async close(): Promise<void> {
    await this.agent.close();
  }
}

async function readText(res: Dispatcher.ResponseData, signal: AbortSignal): Promise<string> {
  try {
    return await res.body.text();
  } catch (err) {
    throw classify(err, signal);
  }
}

function classify(err: unknown, signal: AbortSignal): Error {
  if (err instanceof ServingError || err instanceof WorkerFault) return err;
  if (signal.aborted) return new WorkerFault("request aborted", "aborted");
  if (err instanceof undiciErrors.HeadersTimeoutError || err instanceof undiciErrors.BodyTimeoutError || err instanceof undiciErrors.ConnectTimeoutError) {
    return new WorkerFault((err as Error).message, "timeout");
  }
  return new WorkerFault((err as Error)?.message ?? String(err), "connect");
}

/** Machine-readable fields of a worker's 400 that reach the client as they are. */
const RELAYED_DETAILS = ["character", "offset", "min_tokens", "context_tokens"] as const;

/** A worker's error answer: 4xx and capacity 503s become ServingErrors; other statuses are faults. */
function statusError(status: number, text: string): Error {
  let reason: string | undefined;
  let message = `worker answered ${status}`;
  let param: string | undefined;
  let details: Record<string, unknown> | undefined;
  try {
    const body = JSON.parse(text) as Record<string, unknown>;
    if (typeof body.reason === "string") reason = body.reason;
    if (typeof body.error === "string") message = body.error;
    if (typeof body.param === "string") param = body.param;
    if (body.context_size !== undefined) details = { prompt_tokens: body.prompt_tokens, context_size: body.context_size };
    // unsupported_characters names the character and its offset; context_length_exceeded its bound.
    for (const key of RELAYED_DETAILS) {
      if (typeof body[key] === "string" || typeof body[key] === "number") (details ??= {})[key] = body[key];
    }
  } catch {
    // not JSON: a fault below
  }
  if (status >= 400 && status < 500) {
    return new ServingError(reason !== undefined && isErrorCode(reason) ? reason : "invalid_request", message, { ...(param ? { param } : {}), ...(details ? { details } : {}) });
  }
  if (status === 503 && reason !== undefined && CAPACITY_CODES.has(reason) && isErrorCode(reason)) return new ServingError(reason, message);
  return new WorkerFault(message, "status", status);
}

export function isCapacityError(err: unknown): err is ServingError {
  return err instanceof ServingError && CAPACITY_CODES.has(err.code);
}
