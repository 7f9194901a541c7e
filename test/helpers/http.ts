import { request } from "undici";

/** Small HTTP helpers for tests: JSON calls and SSE streams read to the end. */
export async function getJson<T = any>(url: string): Promise<{ status: number; body: T }> {
  const res = await request(url, { headersTimeout: 10_000, bodyTimeout: 10_000 });
  const text = await res.body.text();
  return { status: res.statusCode, body: JSON.parse(text) as T };
}

export async function postJson<T = any>(url: string, body: unknown, headers: Record<string, string> = {}): Promise<{ status: number; body: T; headers: Record<string, string | string[] | undefined> }> {
  const res = await request(url, {
    method: "POST",
    body: typeof body === "string" || Buffer.isBuffer(body) ? body : JSON.stringify(body),
    headers: { "content-type": "application/json", ...headers },
    headersTimeout: 60_000,
    bodyTimeout: 60_000,
  });
  const text = await res.body.text();
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    // leave as text
  }
  return { status: res.statusCode, body: parsed as T, headers: res.headers };
}

export interface SseResult {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  raw: string;
  events: any[];
  /** Concatenated `token` fields. */
  text: string;
  last: any;
}

/** POSTs and reads the whole SSE answer (or the JSON error body). */
export async function streamSse(url: string, body: unknown, opts: { headers?: Record<string, string>; signal?: AbortSignal } = {}): Promise<SseResult> {
  const res = await request(url, {
    method: "POST",
    body: JSON.stringify(body),
    headers: { "content-type": "application/json", ...opts.headers },
    headersTimeout: 120_000,
    bodyTimeout: 120_000,
    signal: opts.signal,
  });
  const raw = await res.body.text();
  const events: any[] = [];
  if (res.statusCode === 200) {
    for (const block of raw.split("\n\n")) {
      if (!block.startsWith("data: ")) continue;
      const data = block.slice(6);
      if (data === "[DONE]") continue;
      events.push(JSON.parse(data));
    }
  } else {
    try {
      events.push(JSON.parse(raw));
    } catch {
      // non-JSON error body
    }
  }
  return {
    status: res.statusCode,
    headers: res.headers,
    raw,
    events,
    text: events.map((e) => (typeof e.token === "string" ? e.token : "")).join(""),
    last: events[events.length - 1],
  };
}

/** Polls `probe` until it returns a truthy value (observable state, not sleeps). */
export async function waitFor<T>(probe: () => Promise<T> | T, what: string, timeoutMs = 20_000, intervalMs = 50): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await probe();
      if (v) return v as NonNullable<T>;
      last = v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what} (last: ${String((last as Error)?.message ?? last)})`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}
