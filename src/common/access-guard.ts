import type { RouteContext } from "./http-server.js";
import { bearerToken, matchesAny, secretId, secretsEqual } from "./secret.js";
import { ServingError } from "./serving-error.js";

/**
 * Who may call what. Clients present an API key, services (workers, coordinators) the cluster
 * token, both as `Authorization: Bearer …`; each check is off while its secret is unset. Routes are
 * classed by path: the coordinator's liveness health and metrics stay open (load balancers and
 * scrapers), and so does the dashboard's page (its data is not); heartbeats and the prefix index's
 * keys (hashes of other clients' prompts) need the cluster token, everything else a client key.
 */
export type RouteClass = "open" | "client" | "cluster" | "admin";

export interface AccessSecrets {
  apiKeys: readonly string[];
  clusterToken: string | undefined;
}

export function coordinatorRouteClass(path: string): RouteClass {
  // The dashboard's page holds no data (it sends the key it is given to /dashboard/api/state).
  if (path === "/coordinator/health" || path === "/metrics" || path === "/dashboard") return "open";
  if (path === "/coordinator/health/heartbeat" || path === "/coordinator/health/prefix-index") return "cluster";
  // Fleet operations (drain): an operator's API key, or a worker's cluster token (SIGTERM handoff).
  if (path.startsWith("/coordinator/workers/")) return "admin";
  return "client";
}

export function createGuard(secrets: AccessSecrets, classify: (path: string) => RouteClass) {
  return (ctx: RouteContext, routePath: string): void => {
    const cls = classify(routePath);
    if (cls === "open") return;
    const token = bearerToken(ctx.req);
    if (cls === "cluster") {
      if (secrets.clusterToken === undefined) return;
      if (token === undefined || !secretsEqual(token, secrets.clusterToken)) {
        throw new ServingError("unauthorized", "this endpoint needs the cluster token (Authorization: Bearer …)");
      }
      return;
    }
    if (cls === "admin") {
      if (secrets.clusterToken === undefined && secrets.apiKeys.length === 0) return;
      if (token !== undefined && secrets.clusterToken !== undefined && secretsEqual(token, secrets.clusterToken)) return;
      if (secrets.apiKeys.length === 0) throw new ServingError("unauthorized", "this endpoint needs the cluster token or an API key");
    }
    if (secrets.apiKeys.length === 0) return;
    const index = token === undefined ? -1 : matchesAny(token, secrets.apiKeys);
    if (index === -1) throw new ServingError("unauthorized", "a valid API key is required (Authorization: Bearer <key>)");
    ctx.clientId = `key:${secretId(secrets.apiKeys[index]!)}`;
    ctx.log = ctx.log.child({ client: ctx.clientId });
  };
}
