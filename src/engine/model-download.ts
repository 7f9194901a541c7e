import { createHash } from "node:crypto";
import { createReadStream, createWriteStream } from "node:fs";
import { open, readFile, rename, rm, stat, writeFile } from "node:fs/promises";
import { Transform } from "node:stream";
import { pipeline } from "node:stream/promises";
import { request, type Dispatcher } from "undici";

/**
 * Downloads one file over HTTP(S), resumably: bytes go to `<dest>.part`; a run that is cut off (or
 * a later run) continues from the part's size with `Range: bytes=N-`, guarded by `If-Range` with
 * the validator (ETag) the first response gave, so a file that changed meanwhile starts over
 * instead of being spliced. Transient failures (network, 5xx, a truncated body) are retried with
 * backoff, up to `maxAttempts`; 4xx are final. The finished file is checked before it gets its
 * name: its size, its sha256 when one is known (given, or the hub's `X-Linked-Etag`, or a
 * 64-hex ETag), and the GGUF magic. Redirects are followed by hand so that an access token is
 * sent to the origin it belongs to and never to a CDN host it redirects to.
 */
export interface DownloadOptions {
  url: string;
  dest: string;
  /** Hex sha256 the file must have; overrides what the server says. */
  expectedSha256?: string;
  /** Headers sent to the URL's own origin only (authorization). */
  originHeaders?: Record<string, string>;
  onProgress?: (p: DownloadProgress) => void;
  signal?: AbortSignal;
  maxAttempts?: number;
  /** First retry delay (ms); doubled each retry. */
  retryDelayMs?: number;
}

export interface DownloadProgress {
  /** Bytes on disk so far. */
  bytes: number;
  /** Total bytes, when the server told. */
  total: number | undefined;
  /** Bytes that were already there when this run started. */
  resumedFrom: number;
}

export interface DownloadResult {
  path: string;
  bytes: number;
  sha256: string;
  /** Where the sha256 to check came from, if any was known. */
  verifiedAgainst: "given" | "server" | undefined;
  resumedFrom: number;
  attempts: number;
}

export class DownloadError extends Error {
  constructor(message: string, readonly retryable: boolean) {
    super(message);
    this.name = "DownloadError";
  }
}

interface PartMeta {
  url: string;
  etag?: string;
  sha256?: string;
  total?: number;
}

const MAX_REDIRECTS = 8;
const GGUF_MAGIC = "GGUF";
const SHA256_RE = /^[0-9a-f]{64}$/;

export async function downloadFile(o: DownloadOptions): Promise<DownloadResult> {
  const part = `${o.dest}.part`;
  const metaPath = `${o.dest}.part.json`;
  const maxAttempts = o.maxAttempts ?? 5;
  let meta: PartMeta;
  const resumedFrom = await sizeOf(part);
  let attempts = 0;
  for (;;) {
    attempts++;
    // What earlier attempts (or runs) learnt of the file: its validator guards the resumed range.
    meta = await readMeta(metaPath, o.url);
    try {
      meta = await fetchInto(o, part, metaPath, meta, resumedFrom);
      break;
    } catch (err) {
      const retryable = !(err instanceof DownloadError) || err.retryable;
      if (o.signal?.aborted || !retryable || attempts >= maxAttempts) throw err instanceof DownloadError ? err : new DownloadError((err as Error).message, true);
      await sleep((o.retryDelayMs ?? 500) * 2 ** (attempts - 1), o.signal);
    }
  }
  const bytes = await sizeOf(part);
  const sha256 = await hashFile(part);
  const expected = o.expectedSha256?.toLowerCase() ?? meta.sha256;
  if (expected !== undefined && expected !== sha256) {
    await rm(part, { force: true });
    await rm(metaPath, { force: true });
    throw new DownloadError(`checksum mismatch: expected sha256 ${expected}, got ${sha256}; the partial file was removed`, false);
  }
  if (!(await hasGgufMagic(part))) {
    await rm(part, { force: true });
    await rm(metaPath, { force: true });
    throw new DownloadError("the downloaded file is not a GGUF model (no GGUF magic); it was removed", false);
  }
  await rename(part, o.dest);
  await rm(metaPath, { force: true });
  return {
    path: o.dest, bytes, sha256, resumedFrom, attempts,
    verifiedAgainst: o.expectedSha256 !== undefined ? "given" : meta.sha256 !== undefined ? "server" : undefined,
  };
}

/** One GET (following redirects) that appends to the part file; returns what was learnt of the file. */
async function fetchInto(o: DownloadOptions, part: string, metaPath: string, meta: PartMeta, resumedFrom: number): Promise<PartMeta> {
  let offset = await sizeOf(part);
  const origin = new URL(o.url).origin;
  let url = o.url;
  let res: Dispatcher.ResponseData | undefined;
  const learnt: PartMeta = { url: o.url, ...(meta.etag ? { etag: meta.etag } : {}), ...(meta.sha256 ? { sha256: meta.sha256 } : {}) };
  for (let hop = 0; ; hop++) {
    const headers: Record<string, string> = { "user-agent": "inference-engine-pull", "accept-encoding": "identity" };
    if (new URL(url).origin === origin) Object.assign(headers, o.originHeaders);
    if (offset > 0) {
      headers.range = `bytes=${offset}-`;
      if (meta.etag !== undefined) headers["if-range"] = meta.etag;
    }
    res = await request(url, { method: "GET", headers, signal: o.signal, headersTimeout: 30_000, bodyTimeout: 60_000 });
    learnFrom(res.headers, learnt);
    if (res.statusCode >= 300 && res.statusCode < 400 && res.headers.location !== undefined) {
      await res.body.dump();
      if (hop >= MAX_REDIRECTS) throw new DownloadError(`too many redirects from ${o.url}`, false);
      url = new URL(String(res.headers.location), url).toString();
      continue;
    }
    break;
  }
  const status = res.statusCode;
  if (status === 416) {
    // Nothing after `offset`: the part is whole if its size is the file's size.
    await res.body.dump();
    const total = totalOf(res.headers);
    if (total !== undefined && total === offset) return learnt;
    await rm(part, { force: true });
    throw new DownloadError("the server refused to resume; starting over", true);
  }
  if (status !== 200 && status !== 206) {
    const text = (await res.body.text().catch(() => "")).slice(0, 200);
    const why = status === 401 || status === 403 ? " (a gated or private model needs HF_TOKEN)" : status === 404 ? " (no such file)" : "";
    throw new DownloadError(`GET ${o.url} answered ${status}${why}${text ? `: ${text}` : ""}`, status >= 500 || status === 429);
  }
  if (status === 206 && startOf(res.headers) !== offset) {
    await res.body.dump();
    await rm(part, { force: true });
    throw new DownloadError("the server resumed at another offset; starting over", true);
  }
  if (status === 200) offset = 0;
  const total = status === 206 ? totalOf(res.headers) : numberHeader(res.headers["content-length"]);
  if (total !== undefined) learnt.total = total;
  await writeFile(metaPath, JSON.stringify(learnt));
  let bytes = offset;
  let last = 0;
  const counter = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      bytes += chunk.length;
      const now = Date.now();
      if (now - last >= 100) {
        last = now;
        o.onProgress?.({ bytes, total, resumedFrom });
      }
      cb(null, chunk);
    },
  });
  await pipeline(res.body, counter, createWriteStream(part, { flags: offset > 0 ? "a" : "w" }));
  o.onProgress?.({ bytes, total, resumedFrom });
  if (total !== undefined && bytes !== total) throw new DownloadError(`the download stopped at ${bytes} of ${total} bytes`, true);
  return learnt;
}

function learnFrom(h: Dispatcher.ResponseData["headers"], meta: PartMeta): void {
  const linked = stripEtag(h["x-linked-etag"]);
  const etag = h.etag === undefined ? undefined : String(h.etag);
  // The hub names an LFS file's sha256 in X-Linked-Etag; some servers use the sha256 as the ETag.
  const sha = linked !== undefined && SHA256_RE.test(linked) ? linked : stripEtag(etag);
  if (sha !== undefined && SHA256_RE.test(sha)) meta.sha256 = sha;
  // Only a strong validator may guard a range request (RFC 9110 §13.1.5).
  if (etag !== undefined && !etag.startsWith("W/")) meta.etag = etag;
}

function stripEtag(v: unknown): string | undefined {
  if (v === undefined) return undefined;
  return String(v).replace(/^W\//, "").replace(/^"|"$/g, "").toLowerCase();
}

function numberHeader(v: unknown): number | undefined {
  const n = Number(v);
  return v !== undefined && Number.isSafeInteger(n) && n >= 0 ? n : undefined;
}

// The total of a Content-Range header: `bytes 100-199/1000` and `bytes */1000` both give 1000.
function totalOf(h: Dispatcher.ResponseData["headers"]): number | undefined {
  const m = /\/(\d+)\s*$/.exec(String(h["content-range"] ?? ""));
  return m ? Number(m[1]) : undefined;
}

function startOf(h: Dispatcher.ResponseData["headers"]): number | undefined {
  const m = /^bytes\s+(\d+)-/.exec(String(h["content-range"] ?? ""));
  return m ? Number(m[1]) : undefined;
}

async function readMeta(path: string, url: string): Promise<PartMeta> {
  try {
    const m = JSON.parse(await readFile(path, "utf8")) as PartMeta;
    if (m.url === url) return m;
  } catch {
    // none, or unreadable: start without validators
  }
  return { url };
}

async function sizeOf(path: string): Promise<number> {
  try {
    return (await stat(path)).size;
  } catch {
    return 0;
  }
}

export async function hashFile(path: string): Promise<string> {
  const h = createHash("sha256");
  for await (const chunk of createReadStream(path)) h.update(chunk as Buffer);
  return h.digest("hex");
}

async function hasGgufMagic(path: string): Promise<boolean> {
  const fh = await open(path, "r");
  try {
    const buf = Buffer.alloc(4);
    const { bytesRead } = await fh.read(buf, 0, 4, 0);
    return bytesRead === 4 && buf.toString("latin1") === GGUF_MAGIC;
  } finally {
    await fh.close();
  }
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(resolve, ms);
    signal?.addEventListener("abort", () => {
      clearTimeout(t);
      reject(signal.reason);
    }, { once: true });
  });
}
