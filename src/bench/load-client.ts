import { request, type Dispatcher } from "undici";
import { SseParser } from "../protocol/sse.js";

/**
 * The one HTTP client of every load the project drives (the bench targets, the engine bench's
 * streams, the soak's clients, the chaos suite's streams): a JSON POST whose socket timers are off
 * (the caller's AbortSignal bounds each request, so a slow stream is measured, not cut by undici),
 * an SSE reader that hands each event's `data` over with its arrival time, the error code of a
 * refusal's body, and closed loops (each sends its next request when its last one ended).
 */
export type HttpResponse = Dispatcher.ResponseData;

export interface PostOptions {
  /** A keep-alive pool shared by the load's requests; undici's global one by default. */
  dispatcher?: Dispatcher;
  headers?: Record<string, string>;
  signal?: AbortSignal;
}

export function postJson(url: string, body: unknown, o: PostOptions = {}): Promise<HttpResponse> {
  return request(url, {
    method: "POST", body: JSON.stringify(body), headers: { "content-type": "application/json", ...o.headers },
    signal: o.signal, dispatcher: o.dispatcher, headersTimeout: 0, bodyTimeout: 0,
  });
}

/**
 * Reads an SSE body to its end, calling `onEvent` with each event's `data` and the time its chunk
 * arrived (performance.now(), ms). Throws what the body throws (an abort, a cut connection).
 */
export async function readSseEvents(body: AsyncIterable<Uint8Array>, onEvent: (data: string, nowMs: number) => void): Promise<void> {
  const parser = new SseParser();
  const utf8 = new TextDecoder();
  for await (const chunk of body) {
    const now = performance.now();
    for (const ev of parser.push(utf8.decode(chunk, { stream: true }))) onEvent(ev.data, now);
  }
}

/** The error code of a seed (`{reason}`) or OpenAI (`{error: {code, type}}`) error body. */
export function errorReason(text: string, status: number): string {
  try {
    const b = JSON.parse(text) as { reason?: unknown; error?: { code?: unknown; type?: unknown } | unknown };
    if (typeof b.reason === "string") return b.reason;
    const e = b.error as { code?: unknown; type?: unknown } | undefined;
    if (e && typeof e === "object") {
      if (typeof e.code === "string") return e.code;
      if (typeof e.type === "string") return e.type;
    }
  } catch {
    // not JSON
  }
  return `http_${status}`;
}

/** Runs `loops` closed loops of `step` until a step says there is no more to do (returns false). */
export async function closedLoops(loops: number, step: () => Promise<boolean>): Promise<void> {
  await Promise.all(Array.from({ length: loops }, async () => {
    while (await step());
  }));
}
