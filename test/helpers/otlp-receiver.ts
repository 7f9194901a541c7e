import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { gunzipSync } from "node:zlib";

/**
 * A local OTLP/HTTP trace receiver for tests: accepts `POST /v1/traces` (JSON encoding) on
 * 127.0.0.1 and keeps every span with the service that sent it.
 */
export interface ReceivedSpan {
  service: string;
  instance: string | undefined;
  traceId: string;
  spanId: string;
  parentSpanId: string | undefined;
  name: string;
  kind: number;
  start: bigint;
  end: bigint;
  attributes: Record<string, unknown>;
  status: { code?: number; message?: string };
}

export class OtlpReceiver {
  readonly spans: ReceivedSpan[] = [];
  readonly requests: { path: string; contentType: string | undefined; authorization?: string; encoding?: string }[] = [];
  /** Answer this many next exports 503 (a collector shedding load). */
  unavailable = 0;
  private server: Server | undefined;
  url = "";

  async start(): Promise<this> {
    this.server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on("data", (c: Buffer) => chunks.push(c));
      req.on("end", () => {
        const encoding = req.headers["content-encoding"];
        this.requests.push({
          path: req.url ?? "", contentType: req.headers["content-type"],
          ...(req.headers.authorization !== undefined ? { authorization: req.headers.authorization } : {}),
          ...(encoding !== undefined ? { encoding } : {}),
        });
        if (this.unavailable > 0) {
          this.unavailable--;
          res.writeHead(503, { "retry-after": "0" }).end();
          return;
        }
        try {
          const body = Buffer.concat(chunks);
          this.collect(JSON.parse((encoding === "gzip" ? gunzipSync(body) : body).toString("utf8")));
          res.writeHead(200, { "content-type": "application/json" }).end("{}");
        } catch {
          res.writeHead(400).end();
        }
      });
    });
    await new Promise<void>((resolve) => this.server!.listen(0, "127.0.0.1", resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    return this;
  }

  private collect(body: any): void {
    for (const rs of body.resourceSpans ?? []) {
      const res = attrs(rs.resource?.attributes);
      for (const ss of rs.scopeSpans ?? []) {
        for (const s of ss.spans ?? []) {
          this.spans.push({
            service: String(res["service.name"]), instance: res["service.instance.id"] as string | undefined,
            traceId: s.traceId, spanId: s.spanId, parentSpanId: s.parentSpanId, name: s.name, kind: s.kind,
            start: BigInt(s.startTimeUnixNano), end: BigInt(s.endTimeUnixNano), attributes: attrs(s.attributes), status: s.status ?? {},
          });
        }
      }
    }
  }

  async stop(): Promise<void> {
    this.server?.closeAllConnections();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }
}

function attrs(list: { key: string; value: Record<string, unknown> }[] | undefined): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  // OTLP/JSON may write a 64-bit intValue as a number or a string: kept as the string.
  for (const a of list ?? []) out[a.key] = "intValue" in a.value ? String(a.value.intValue) : Object.values(a.value)[0];
  return out;
}
