import { sendJson, type HttpServer } from "../../common/http-server.js";
import type { InferencePipeline } from "../pipeline/inference-pipeline.js";
import type { WorkerClient } from "../fleet/worker-client.js";
import { drainWorker, undrainWorker } from "../fleet/worker-drain.js";
import type { WorkerTable } from "../fleet/worker-table.js";

/**
 * The operator's plane (admin class in route-class.ts): drain a worker, handing its cached
 * conversations to the others, and take it back into rotation.
 */
export function registerAdminRoutes(server: HttpServer, deps: { table: WorkerTable; client: WorkerClient; pipeline: InferencePipeline }): void {
  const { table, client, pipeline } = deps;
  server.route("POST", "/coordinator/workers/:id/drain", async (ctx) => {
    sendJson(ctx.res, 200, await drainWorker({ table, client, pipeline, log: ctx.log }, ctx.params.id!, ctx.requestId));
  });
  server.route("POST", "/coordinator/workers/:id/undrain", async (ctx) => {
    sendJson(ctx.res, 200, await undrainWorker({ table, client, log: ctx.log }, ctx.params.id!, ctx.requestId));
  });
}
