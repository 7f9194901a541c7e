import { createHash, timingSafeEqual } from "node:crypto";
import type { RouteContext } from "../common/http-server.js";
import { ServingError } from "../common/serving-error.js";
import { DASHBOARD_ROUTES } from "./dashboard-routes.js";

/**
 * Client API keys (`API_KEYS`): when any is configured, the client APIs (`/v1/*`,
 * `/coordinator/infer`) and the dashboard's data (`/dashboard/api/state`: the page itself holds
 * none) require `Authorization: Bearer <key>`, else 401 in the route's dialect.
 * Keys are compared as SHA-256 digests with a constant-time compare, against every key, so the
 * time taken tells nothing about how much of a key matched or which one. Health and heartbeat
 * routes stay open (the fleet's own traffic).
 */
const digest = (s: string) => createHash("sha256").update(s).digest();

export function isClientRoute(routePath: string): boolean {
  return routePath.startsWith("/v1/") || routePath === "/coordinator/infer";
}

function isGuarded(routePath: string): boolean {
  return isClientRoute(routePath) || routePath === DASHBOARD_ROUTES.state;
}

export function apiKeyGuard(keys: readonly string[]): ((ctx: RouteContext, routePath: string) => void) | undefined {
  if (keys.length === 0) return undefined;
  const digests = keys.map(digest);
  return (ctx, routePath) => {
    if (!isGuarded(routePath)) return;
    const header = ctx.req.headers.authorization;
    const m = typeof header === "string" ? /^Bearer\s+(\S+)\s*$/i.exec(header) : null;
    if (m === null) throw new ServingError("unauthorized", "missing API key: send 'Authorization: Bearer <key>'");
    const given = digest(m[1]!);
    let ok = false;
    for (const d of digests) ok = timingSafeEqual(given, d) || ok;
    if (!ok) throw new ServingError("unauthorized", "invalid API key");
  };
}
