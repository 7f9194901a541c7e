import type { Registry } from "prom-client";
import type { HttpServer } from "./http-server.js";

/** `GET /metrics`: the registry in Prometheus' text format (version 0.0.4). */
export function registerMetricsRoute(server: HttpServer, registry: Registry): void {
  server.route("GET", "/metrics", async (ctx) => {
    const text = await registry.metrics();
    ctx.res.writeHead(200, { "content-type": registry.contentType, "content-length": Buffer.byteLength(text) });
    ctx.res.end(text);
  });
}
