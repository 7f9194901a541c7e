import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { randomUUID } from "node:crypto";
import type { AddressInfo } from "node:net";
import { bindFields, type Logger } from "./logger.js";
import { ServingError } from "../protocol/serving-error.js";
import { errorHeaders, httpStatusOf, openAiErrorBody, seedErrorBody, toServingError } from "../protocol/error-mapping.js";
import { parseJsonObject, type JsonObject } from "../protocol/validate.js";
import { JsonDepthScanner } from "../protocol/json-depth.js";

/**
 * A small router over node:http. The hot paths (SSE relays) write straight to the socket, so a
 * framework would add little; what is here is what every route needs: request ids, bounded body
 * reading, and the one error handler that maps a ServingError to HTTP.
 */
export type ErrorDialect = "seed" | "openai";

export interface RouteContext {
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  readonly url: URL;
  readonly params: Readonly<Record<string, string>>;
  readonly requestId: string;
  log: Logger;
  /** Who is asking, for rate limits and logs: an API key's id once authenticated, else the address. */
  clientId: string;
  /** Set by the guard for an operator (admin key, cluster token, or the local operator): may use negative priorities. */
  operator: boolean;
  /** Reads the body (at most the configured limit) and parses a JSON object. */
  readJson(): Promise<JsonObject>;
}

export type Handler = (ctx: RouteContext) => Promise<void> | void;

interface Route {
  method: string;
  /** The path as registered, normalised ("/a/:b"): the metrics' route label. */
  path: string;
  segments: string[];
  handler: Handler;
  dialect: ErrorDialect;
}

export interface HttpServerOptions {
  log: Logger;
  maxBodyBytes: number;
  /** Deepest nesting of arrays/objects a JSON body may have (checked before parsing). */
  maxJsonDepth: number;
  /** Called for every finished response (metrics hook). */
  onResponse?: (route: string, method: string, status: number, durationMs: number) => void;
  /** Runs before the handler; throws a ServingError to refuse (authentication). */
  guard?: (ctx: RouteContext, routePath: string) => void;
}

const REQUEST_ID_RE = /^[A-Za-z0-9._:-]{1,128}$/;
/** A path WHATWG URL parsing would return unchanged (no dot segments, escapes, backslashes, or leading `//`). */
const PLAIN_PATH_RE = /^\/(?!\/)[A-Za-z0-9_\-/]*$/;

function parseUrl(raw: string): URL {
  try {
    return new URL(raw, "http://localhost");
  } catch {
    return new URL("http://localhost/");
  }
}

/** The request target's path, as `new URL(raw, base).pathname` gives it, without a URL object for plain paths. */
export function pathnameOf(raw: string): string {
  const q = raw.indexOf("?");
  const path = q === -1 ? raw : raw.slice(0, q);
  return PLAIN_PATH_RE.test(path) ? path : parseUrl(raw).pathname;
}

export class HttpServer {
  private readonly routes: Route[] = [];
  readonly server: Server;

  constructor(private readonly opts: HttpServerOptions) {
    this.server = createServer({ keepAlive: true, noDelay: true }, (req, res) => void this.dispatch(req, res));
    // Streams live long; the request (headers + body) must still arrive promptly.
    this.server.requestTimeout = 60_000;
    this.server.headersTimeout = 30_000;
    this.server.keepAliveTimeout = 65_000;
    this.server.on("clientError", (err, socket) => {
      if (socket.writable) socket.end("HTTP/1.1 400 Bad Request\r\nconnection: close\r\ncontent-length: 0\r\n\r\n");
      else socket.destroy();
      opts.log.debug({ err: (err as Error).message }, "http.client_error");
    });
  }

  route(method: string, path: string, handler: Handler, dialect: ErrorDialect = "seed"): this {
    const segments = path.split("/").filter(Boolean);
    this.routes.push({ method, path: "/" + segments.join("/"), segments, handler, dialect });
    return this;
  }

  async listen(port: number, host: string): Promise<string> {
    await new Promise<void>((resolve, reject) => {
      this.server.once("error", reject);
      this.server.listen(port, host, () => {
        this.server.off("error", reject);
        resolve();
      });
    });
    const addr = this.server.address() as AddressInfo;
    const shownHost = host === "0.0.0.0" || host === "::" ? "127.0.0.1" : host;
    return `http://${shownHost.includes(":") ? `[${shownHost}]` : shownHost}:${addr.port}`;
  }

  get port(): number {
    return (this.server.address() as AddressInfo).port;
  }

  /** Stops accepting connections; open streams are left to their owners. */
  async close(): Promise<void> {
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private match(method: string, pathname: string): { route: Route; params: Record<string, string> } | "method" | null {
    const parts = pathname.split("/").filter(Boolean);
    let pathMatched = false;
    for (const route of this.routes) {
      if (route.segments.length !== parts.length) continue;
      // Built only for a route with parameters (most have none).
      let params: Record<string, string> | undefined;
      let ok = true;
      for (let i = 0; i < parts.length; i++) {
        const seg = route.segments[i]!;
        if (seg.startsWith(":")) {
          try {
            (params ??= {})[seg.slice(1)] = decodeURIComponent(parts[i]!);
          } catch {
            ok = false;
            break;
          }
        } else if (seg !== parts[i]) {
          ok = false;
          break;
        }
      }
      if (!ok) continue;
      pathMatched = true;
      if (route.method === method) return { route, params: params ?? {} };
    }
    return pathMatched ? "method" : null;
  }

  private async dispatch(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const started = performance.now();
    const headerId = req.headers["x-request-id"];
    const requestId = typeof headerId === "string" && REQUEST_ID_RE.test(headerId) ? headerId : randomUUID();
    const pathname = pathnameOf(req.url ?? "/");
    const found = this.match(req.method ?? "GET", pathname);
    const routePath = found && found !== "method" ? found.route.path : "unmatched";
    const dialect: ErrorDialect = found && found !== "method" ? found.route.dialect : pathname.startsWith("/v1/") ? "openai" : "seed";
    let url: URL | undefined;
    const ctx: RouteContext = {
      req, res, requestId,
      // Parsed only for a route that reads it (none of the hot ones do).
      get url(): URL {
        return (url ??= parseUrl(req.url ?? "/"));
      },
      params: found && found !== "method" ? found.params : {},
      // Bound lazily: nothing is built for the request id unless a line is written.
      log: bindFields(this.opts.log, { request_id: requestId }),
      clientId: `ip:${req.socket.remoteAddress ?? "unknown"}`,
      operator: false,
      readJson: () => readJsonBody(req, this.opts.maxBodyBytes, this.opts.maxJsonDepth),
    };
    res.setHeader("x-request-id", requestId);
    if (this.opts.onResponse) {
      const onResponse = this.opts.onResponse;
      res.once("close", () => onResponse(routePath, req.method ?? "GET", res.statusCode, performance.now() - started));
    }
    try {
      if (found === null) throw new ServingError("not_found", `no route for ${pathname}`);
      if (found === "method") throw new ServingError("method_not_allowed", `method ${req.method} not allowed on ${pathname}`);
      this.opts.guard?.(ctx, routePath);
      await found.route.handler(ctx);
    } catch (err) {
      sendError(ctx, err, dialect);
    }
  }
}

/** The one place that turns a thrown error into an HTTP answer. */
export function sendError(ctx: RouteContext, err: unknown, dialect: ErrorDialect): void {
  const se = toServingError(err);
  if (se.code === "internal") ctx.log.error({ err: se.cause ?? se }, "http.internal_error");
  const { res } = ctx;
  if (res.headersSent) {
    // A stream had started: its owner reports errors inside it; all that is left is to end it.
    if (!res.writableEnded) res.end();
    return;
  }
  const status = httpStatusOf(se.code);
  const body = dialect === "openai" ? openAiErrorBody(se) : seedErrorBody(se, ctx.requestId);
  const headers: Record<string, string> = { "content-type": "application/json", ...errorHeaders(se) };
  // After a refused or unread body the connection's framing is unknown: close it. A small body of
  // declared length (a request refused before it was read) is read and dropped instead, which keeps
  // the connection: an overloaded client's next request then costs no new connection.
  if (se.code === "body_too_large" || se.code === "json_too_deep" || (!ctx.req.complete && !discardSmallBody(ctx.req))) headers.connection = "close";
  sendJson(res, status, body, headers);
}

/** Bodies up to this size (bytes, declared by content-length) are read and dropped after a refusal. */
const DISCARDED_BODY_MAX_BYTES = 64 * 1024;

/** Starts dropping an unread body of small declared length; false when it must not be read. */
function discardSmallBody(req: IncomingMessage): boolean {
  const declared = Number(req.headers["content-length"]);
  if (req.headers["transfer-encoding"] !== undefined || !Number.isFinite(declared) || declared > DISCARDED_BODY_MAX_BYTES) return false;
  req.resume();
  return true;
}

export function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(text), ...headers });
  res.end(text);
}

/**
 * Reads a request's body (bounded) and parses it as a JSON object. Plain 'data'/'end' listeners, not
 * an async iterator (whose promises per chunk cost tens of µs a request); one chunk (the usual case)
 * is decoded without a copy.
 */
function readJsonBody(req: IncomingMessage, maxBytes: number, maxDepth: number): Promise<JsonObject> {
  const declared = Number(req.headers["content-length"]);
  if (Number.isFinite(declared) && declared > maxBytes) {
    req.resume();
    return Promise.reject(new ServingError("body_too_large", `request body exceeds ${maxBytes} bytes`));
  }
  return new Promise<JsonObject>((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    // Each chunk's nesting is checked as it arrives: a body nested too deep is refused at once,
    // unread beyond that chunk, and never reaches JSON.parse (whose cost grows with the tree).
    const depth = new JsonDepthScanner(maxDepth);
    const done = (): void => {
      req.off("data", onData);
      req.off("end", onEnd);
      req.off("error", onError);
      req.off("close", onClose);
    };
    const refuse = (err: ServingError): void => {
      done();
      req.resume();
      reject(err);
    };
    const onData = (chunk: Buffer): void => {
      size += chunk.length;
      if (size > maxBytes) return refuse(new ServingError("body_too_large", `request body exceeds ${maxBytes} bytes`));
      const tooDeep = depth.feed(chunk);
      if (tooDeep !== undefined) {
        return refuse(new ServingError("json_too_deep", `JSON nesting deeper than ${maxDepth} levels (at byte ${tooDeep})`, {
          details: { max_depth: maxDepth, offset: tooDeep },
        }));
      }
      chunks.push(chunk);
    };
    const onEnd = (): void => {
      done();
      if (size === 0) return reject(new ServingError("invalid_request", "request body is empty; send a JSON object"));
      // Invalid UTF-8 decodes to U+FFFD rather than failing, so a broken byte is a content problem, not a crash.
      const bytes = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size);
      try {
        resolve(parseJsonObject(bytes.toString("utf8")));
      } catch (err) {
        reject(err);
      }
    };
    const onError = (err: Error): void => {
      done();
      reject(err);
    };
    // Closed before its end (the client went away mid-body).
    const onClose = (): void => {
      done();
      reject(new Error("the request closed before its body ended"));
    };
    req.on("data", onData);
    req.on("end", onEnd);
    req.on("error", onError);
    req.on("close", onClose);
  });
}
