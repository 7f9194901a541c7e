import type { RouteContext } from "./http-server.js";
import type { Logger } from "./logger.js";
import { bearerToken, matchesAny, secretId, secretsEqual } from "./secret.js";
import { ServingError } from "../protocol/serving-error.js";

/**
 * Who may call what. Clients present an API key, operators an admin key, services (workers,
 * coordinators) the cluster token, all as `Authorization: Bearer …`. Routes are classed by path:
 * - open: the coordinator's liveness health and readiness, metrics and the dashboard's page (no data);
 * - cluster: heartbeats and every worker endpoint. With CLUSTER_TOKEN they need it; without it
 *   they serve loopback peers only (401 cluster_token_required), unless INSECURE restores the old
 *   open behaviour;
 * - admin: drain/undrain, the prefix index (hashes of other clients' prompts) and the routing log.
 *   An admin key or the cluster token (a worker's SIGTERM handoff); with no secret configured at
 *   all, a loopback peer (the operator on the machine). A client key gets 403;
 * - client: everything else; an API key when API_KEYS is set (an admin key works too).
 * A request that carries operator rights (`ctx.operator`) may also use a negative priority.
 */
export type RouteClass = "open" | "client" | "cluster" | "admin";

export interface AccessSecrets {
  apiKeys: readonly string[];
  adminApiKeys: readonly string[];
  clusterToken: string | undefined;
  /** Without a cluster token, serve the cluster plane to every address (the behaviour before). */
  insecure: boolean;
}

/** 127.0.0.0/8 and ::1, also as IPv4-mapped IPv6 (a dual-stack socket's view of 127.0.0.1). */
export function isLoopback(address: string | undefined): boolean {
  if (address === undefined) return false;
  const v4 = address.startsWith("::ffff:") ? address.slice(7) : address;
  return address === "::1" || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(v4);
}

const CLUSTER_TOKEN_REQUIRED =
  "this endpoint belongs to the cluster plane, which serves loopback peers only while CLUSTER_TOKEN is unset: " +
  "set the same CLUSTER_TOKEN on coordinators and workers (or INSECURE=1 / --insecure to accept any address, unsafe)";

export function createGuard(secrets: AccessSecrets, classify: (path: string) => RouteClass) {
  // No secret of any kind: a machine run as `npm start`, whose own operator is on loopback.
  const nothingSet = (s: AccessSecrets) => s.apiKeys.length === 0 && s.adminApiKeys.length === 0 && s.clusterToken === undefined;
  return (ctx: RouteContext, routePath: string): void => {
    const cls = classify(routePath);
    if (cls === "open") return;
    const token = bearerToken(ctx.req);
    const trustedPeer = secrets.insecure || isLoopback(ctx.req.socket.remoteAddress);
    const tokenOk = token !== undefined && secrets.clusterToken !== undefined && secretsEqual(token, secrets.clusterToken);
    if (cls === "cluster") {
      if (secrets.clusterToken === undefined) {
        if (!trustedPeer) throw new ServingError("cluster_token_required", CLUSTER_TOKEN_REQUIRED);
        return;
      }
      if (!tokenOk) throw new ServingError("unauthorized", "this endpoint needs the cluster token (Authorization: Bearer …)");
      return;
    }
    const adminIndex = token === undefined ? -1 : matchesAny(token, secrets.adminApiKeys);
    if (adminIndex !== -1) {
      ctx.operator = true;
      ctx.clientId = `admin:${secretId(secrets.adminApiKeys[adminIndex]!)}`;
      ctx.log = ctx.log.child({ client: ctx.clientId });
      return;
    }
    // The operator on the machine itself, when no operator secret is configured at all.
    const localOperator = nothingSet(secrets) && trustedPeer;
    if (cls === "admin") {
      if (tokenOk || localOperator) {
        ctx.operator = true;
        return;
      }
      if (token !== undefined && matchesAny(token, secrets.apiKeys) !== -1) {
        throw new ServingError("forbidden", "this endpoint needs an operator key (ADMIN_API_KEYS); a client key is not one");
      }
      throw new ServingError("unauthorized", nothingSet(secrets)
        ? "operator endpoints serve loopback peers only while no ADMIN_API_KEYS, API_KEYS or CLUSTER_TOKEN is set"
        : "this endpoint needs an operator key (ADMIN_API_KEYS) or the cluster token (Authorization: Bearer …)");
    }
    if (localOperator) ctx.operator = true;
    if (secrets.apiKeys.length === 0) return;
    const index = token === undefined ? -1 : matchesAny(token, secrets.apiKeys);
    if (index === -1) throw new ServingError("unauthorized", "a valid API key is required (Authorization: Bearer <key>)");
    ctx.clientId = `key:${secretId(secrets.apiKeys[index]!)}`;
    ctx.log = ctx.log.child({ client: ctx.clientId });
  };
}

/** Says at every start who may reach the cluster plane (a warning when anyone may). */
export function logClusterPlane(log: Logger, s: { clusterToken: string | undefined; insecure: boolean }, role: string): void {
  if (s.clusterToken !== undefined) log.info({ role }, "cluster_plane.token_required");
  else if (s.insecure) {
    log.warn({
      role, setting: "INSECURE",
      warning: "CLUSTER_TOKEN is unset and INSECURE is on: any address may register workers, receive prompts and call worker endpoints",
    }, "cluster_plane.insecure");
  } else log.info({ role, hint: "set CLUSTER_TOKEN to accept workers and coordinators on other machines" }, "cluster_plane.loopback_only");
}
