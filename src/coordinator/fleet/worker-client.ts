import { Agent, request, type Dispatcher } from "undici";
import { parseDecodeEvent } from "../../protocol/decode-event.js";
import { KV_EXPORT_HEADERS, type AdoptAnswer, type DrainListing, type HandoffEntry, type KvExportSource, type PrefillRequest, type PrefillResponse } from "../../protocol/worker-api.js";
import type { Upstream } from "../stream/upstream.js";
import { WorkerExchange, type Opening } from "./worker-exchange.js";
import { WorkerFault, classify, statusError } from "./worker-fault.js";

/**
 * HTTP toward workers, over one keep-alive agent (undici: cheaper per stream than node:http at
 * hundreds of streams). A request's hot path is one exchange, `/worker/generate` (prefill and
 * decode: its first event acknowledges the prefill, so a refusal still comes as a status before any
 * token); a worker that answers it 404 (an older one) gets the two calls, prefill then decode,
 * from then on (rechecked every GENERATE_RECHECK_MS). Streams are read at undici's dispatch level
 * (worker-exchange.ts). Failures are classified once here:
 *   - `WorkerFault`: the worker or the network failed (connect error, 5xx, timeout) → another
 *     worker may succeed, and the worker is suspect; kind `died` is a connection that closed or
 *     reset after the request was sent (the worker died handling it: the request is suspect too);
 *     a 401/403 is kind `auth` (the worker refused the coordinator's token: a worker fault);
 *   - `ServingError` with a 4xx code: the request itself is wrong → no retry;
 *   - `ServingError` with a 503 capacity code: this worker is full → another may not be.
 */
export { WorkerFault, isCapacityError } from "./worker-fault.js";
export interface WorkerClientOptions {
  connectTimeoutMs: number;
  prefillTimeoutMs: number;
  /**
   * Connections kept toward one worker at most (undefined: no bound). HTTP/1.1 has no multiplexing,
   * so a stream holds its connection for its whole life: the bound must exceed the streams one
   * worker can carry (start-coordinator.ts sizes it from SYSTEM_MAX_SESSIONS); a call past it waits
   * for a connection instead of opening one more.
   */
  maxConnectionsPerWorker?: number;
  /** Added to every request (cluster token). */
  headers?: Record<string, string>;
}

export interface CallOptions {
  requestId: string;
  signal: AbortSignal;
  headers?: Record<string, string>;
}

/**
 * Largest answer body read from a worker outside a stream (bytes): a prefill's or an error's JSON is
 * a few hundred bytes; a drain listing carries token lists of the kept sequences, an export one KV state.
 */
const ANSWER_MAX_BYTES = 1024 * 1024;
const DRAIN_LISTING_MAX_BYTES = 64 * 1024 * 1024;

/** How long a worker that answered 404 to /worker/generate is served with prefill + decode before it is asked again (ms). */
const GENERATE_RECHECK_MS = 60_000;

/** A started exchange: the prefill's answer and the decode stream that follows it. */
export interface Generated {
  prefill: PrefillResponse;
  upstream: Upstream;
}

export class WorkerClient {
  readonly agent: Agent;
  /** Worker URLs without /worker/generate, with when that was learnt (ms, performance.now()). */
  private readonly twoCalls = new Map<string, number>();
  /** A worker URL as undici's origin and the path prefix before the route. */
  private readonly targets = new Map<string, { origin: string; prefix: string }>();

  constructor(private readonly o: WorkerClientOptions) {
    this.agent = new Agent({
      connect: { timeout: o.connectTimeoutMs },
      keepAliveTimeout: 30_000,
      keepAliveMaxTimeout: 60_000,
      // One connection per concurrent stream (HTTP/1.1 has no multiplexing), reused across requests.
      connections: o.maxConnectionsPerWorker ?? null,
      pipelining: 1,
    });
  }

  /** Whether requests to this worker take the one exchange (false: prefill + decode). */
  generates(workerUrl: string): boolean {
    const since = this.twoCalls.get(workerUrl);
    if (since === undefined) return true;
    if (performance.now() - since < GENERATE_RECHECK_MS) return false;
    this.twoCalls.delete(workerUrl);
    return true;
  }

  /**
   * Prefill and decode in one exchange: resolves at the acknowledgement (the prefill's answer) with
   * the decode stream that follows; a refusal rejects as the prefill's would. Undefined when the
   * worker has no such route (remembered: `generates` is false for it from then on).
   */
  async generate(workerUrl: string, body: PrefillRequest, o: CallOptions): Promise<Generated | undefined> {
    const x = this.open(workerUrl, "/worker/generate", body, o, true);
    const opening = await this.opening(x, o.signal);
    if (opening.status !== 200) {
      const text = (opening as { text: string }).text;
      if (opening.status === 404 && !namesModel(text)) return this.withoutGenerate(workerUrl);
      throw statusError(opening.status, text);
    }
    const block = (opening as { ack: string | undefined }).ack;
    if (block === undefined) {
      // A 200 that is no event stream: a server that answers any route, without this one.
      x.destroy();
      return this.withoutGenerate(workerUrl);
    }
    const prefill = ackOf(block);
    if (prefill === undefined) {
      x.destroy();
      throw new WorkerFault("the worker's stream did not open with a prefill acknowledgement", "protocol", 200);
    }
    return { prefill, upstream: x };
  }

  private headers(o: CallOptions): Record<string, string> {
    return { "content-type": "application/json", "x-request-id": o.requestId, ...this.o.headers, ...o.headers };
  }

  /** A prefill, headers and body within PREFILL_TIMEOUT_MS (a worker that stalls after its headers is a timeout). */
  async prefill(workerUrl: string, body: PrefillRequest, o: CallOptions): Promise<PrefillResponse> {
    const deadline = withDeadline(o.signal, this.o.prefillTimeoutMs);
    const call = { ...o, signal: deadline };
    const res = await this.call(workerUrl, "/worker/prefill", body, call, this.o.prefillTimeoutMs, o.signal);
    const text = await readText(res, deadline, ANSWER_MAX_BYTES, o.signal);
    if (res.statusCode !== 200) throw statusError(res.statusCode, text);
    try {
      return JSON.parse(text) as PrefillResponse;
    } catch {
      throw new WorkerFault("prefill answered non-JSON", "protocol", res.statusCode);
    }
  }

  private withoutGenerate(workerUrl: string): undefined {
    this.twoCalls.set(workerUrl, performance.now());
    return undefined;
  }

  /** Starts a decode stream; resolves once the worker answered 200 and the SSE body flows. */
  async decode(workerUrl: string, sessionId: string, maxTokens: number | undefined, o: CallOptions): Promise<Upstream> {
    const x = this.open(workerUrl, "/worker/decode", { session_id: sessionId, max_tokens: maxTokens }, o, false);
    const opening = await this.opening(x, o.signal);
    if (opening.status !== 200) throw statusError(opening.status, (opening as { text: string }).text);
    return x;
  }

  /** Asks a worker to drain; it answers with its cached sequences for a handoff. */
  async drain(workerUrl: string, requestId: string, timeoutMs: number): Promise<DrainListing> {
    const signal = AbortSignal.timeout(timeoutMs);
    const res = await this.call(workerUrl, "/worker/drain", {}, { requestId, signal }, timeoutMs);
    const text = await readText(res, signal, DRAIN_LISTING_MAX_BYTES);
    if (res.statusCode !== 200) throw statusError(res.statusCode, text);
    try {
      return JSON.parse(text) as DrainListing;
    } catch {
      throw new WorkerFault("drain answered non-JSON", "protocol", res.statusCode);
    }
  }

  /** Hands one cached sequence to a worker, which restores its KV state or re-prefills its tokens, and keeps it. */
  async adopt(workerUrl: string, body: HandoffEntry & { model: string }, requestId: string, timeoutMs: number, signal?: AbortSignal): Promise<AdoptAnswer> {
    const deadline = signal === undefined ? AbortSignal.timeout(timeoutMs) : withDeadline(signal, timeoutMs);
    const res = await this.call(workerUrl, "/worker/adopt", body, { requestId, signal: deadline }, timeoutMs);
    const text = await readText(res, deadline, ANSWER_MAX_BYTES);
    if (res.statusCode !== 200) throw statusError(res.statusCode, text);
    return parseJson<AdoptAnswer>(text, "adopt", res.statusCode);
  }

  /**
   * Moves a copy of a conversation's KV from one worker to another without holding it here: the
   * holder's `POST /worker/export` answer is an adopt body, streamed as it arrives into the
   * adopter's `POST /worker/adopt`; only the export's headers are read (a state can be tens of MB,
   * which parsing here would cost every stream this coordinator relays). Both calls within `timeoutMs`.
   */
  async moveKv(fromUrl: string, toUrl: string, conversationId: string, requestId: string, timeoutMs: number, signal: AbortSignal): Promise<KvTransfer> {
    const deadline = withDeadline(signal, timeoutMs);
    const call = { requestId, signal: deadline };
    const exported = await this.call(fromUrl, "/worker/export", { conversation_id: conversationId }, call, timeoutMs, signal);
    if (exported.statusCode !== 200) throw statusError(exported.statusCode, await readText(exported, deadline, ANSWER_MAX_BYTES, signal));
    const header = (name: string) => String(exported.headers[name] ?? "");
    const tokens = Number(header(KV_EXPORT_HEADERS.tokens));
    const stateBytes = Number(header(KV_EXPORT_HEADERS.stateBytes));
    const source = header(KV_EXPORT_HEADERS.source) as KvExportSource;
    let res: Dispatcher.ResponseData;
    try {
      res = await request(`${toUrl}/worker/adopt`, {
        method: "POST", dispatcher: this.agent, body: exported.body, headers: this.headers(call),
        signal: deadline, headersTimeout: timeoutMs, bodyTimeout: timeoutMs,
      });
    } catch (err) {
      exported.body.destroy();
      throw classify(err, deadline, signal);
    }
    const text = await readText(res, deadline, ANSWER_MAX_BYTES, signal);
    if (res.statusCode !== 200) throw statusError(res.statusCode, text);
    return { tokens, stateBytes, source, adopted: parseJson<AdoptAnswer>(text, "adopt", res.statusCode) };
  }

  /** Tells a drained worker to take sessions again. */
  async undrain(workerUrl: string, requestId: string, timeoutMs: number): Promise<void> {
    const signal = AbortSignal.timeout(timeoutMs);
    const res = await this.call(workerUrl, "/worker/undrain", {}, { requestId, signal }, timeoutMs);
    const text = await readText(res, signal, ANSWER_MAX_BYTES);
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

  /** A streamed exchange, closed when `o.signal` aborts (which cancels the worker's session). */
  private open(workerUrl: string, path: string, body: unknown, o: CallOptions, ackFirst: boolean): WorkerExchange {
    const x = new WorkerExchange({ ackFirst, maxAnswerBytes: ANSWER_MAX_BYTES });
    if (o.signal.aborted) x.destroy();
    else o.signal.addEventListener("abort", x.abort, { once: true });
    const t = this.target(workerUrl);
    this.agent.dispatch({
      origin: t.origin, path: t.prefix + path, method: "POST", headers: this.headers(o), body: JSON.stringify(body),
      headersTimeout: this.o.prefillTimeoutMs,
      // Streams pause under backpressure for as long as a slow client allows; the relay's write
      // deadline bounds that, not the socket's idle time.
      bodyTimeout: 0,
    }, x);
    return x;
  }

  /** The exchange's opening within PREFILL_TIMEOUT_MS (headers, and the acknowledgement or error body), its failure classified. */
  private async opening(x: WorkerExchange, signal: AbortSignal): Promise<Opening> {
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      x.destroy();
    }, this.o.prefillTimeoutMs);
    try {
      return await x.opened;
    } catch (err) {
      if (timedOut && !signal.aborted) throw new WorkerFault("the worker did not answer in time", "timeout");
      throw classify(err, signal);
    } finally {
      clearTimeout(timer);
    }
  }

  private target(workerUrl: string): { origin: string; prefix: string } {
    let t = this.targets.get(workerUrl);
    if (t === undefined) {
      const u = new URL(workerUrl);
      t = { origin: u.origin, prefix: u.pathname.replace(/\/+$/, "") };
      this.targets.set(workerUrl, t);
    }
    return t;
  }

  /** `clientSignal`: the client's own signal, when `o.signal` adds a deadline to it (an abort by the deadline is a timeout). */
  private async call(workerUrl: string, path: string, body: unknown, o: CallOptions, timeoutMs: number, clientSignal?: AbortSignal): Promise<Dispatcher.ResponseData> {
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
      throw classify(err, o.signal, clientSignal);
    }
  }

  async close(): Promise<void> {
    await this.agent.close();
  }
}

function parseJson<T>(text: string, what: string, status: number): T {
  try {
    return JSON.parse(text) as T;
  } catch {
    throw new WorkerFault(`${what} answered non-JSON`, "protocol", status);
  }
}

/** What `moveKv` moved: the state's tokens and bytes (before base64), where the holder had it, the adopter's answer. */
export interface KvTransfer {
  tokens: number;
  stateBytes: number;
  source: KvExportSource;
  adopted: AdoptAnswer;
}

/** `signal` aborted after `ms`, or when `signal` is (ms). */
function withDeadline(signal: AbortSignal, ms: number): AbortSignal {
  return AbortSignal.any([signal, AbortSignal.timeout(ms)]);
}

/**
 * A worker's answer body as text, at most `maxBytes` (a larger one is a protocol fault and the
 * connection is closed); `signal` bounds the time (the caller's deadline).
 */
async function readText(res: Dispatcher.ResponseData, signal: AbortSignal, maxBytes: number, clientSignal?: AbortSignal): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  const onAbort = () => res.body.destroy(signal.reason instanceof Error ? signal.reason : new Error("aborted"));
  if (signal.aborted) onAbort();
  else signal.addEventListener("abort", onAbort, { once: true });
  try {
    for await (const chunk of res.body) {
      const b = chunk as Buffer;
      size += b.length;
      if (size > maxBytes) {
        res.body.destroy();
        throw new WorkerFault(`the worker's answer exceeds ${maxBytes} bytes`, "protocol", res.statusCode);
      }
      chunks.push(b);
    }
    return Buffer.concat(chunks).toString("utf8");
  } catch (err) {
    throw classify(err, signal, clientSignal);
  } finally {
    signal.removeEventListener("abort", onAbort);
  }
}

/** A 404 that names the model (model_not_found) is the request's; any other is a worker without the route. */
function namesModel(text: string): boolean {
  try {
    return (JSON.parse(text) as { reason?: unknown }).reason === "model_not_found";
  } catch {
    return false;
  }
}

/** The prefill's answer from generate's first SSE block (`data: {"prefill":{…}}`, a GenerateAckEvent), or undefined. */
function ackOf(block: string): PrefillResponse | undefined {
  if (!block.startsWith("data: ")) return undefined;
  const e = parseDecodeEvent(block.slice(6));
  return e?.kind === "prefill" ? e.prefill : undefined;
}
