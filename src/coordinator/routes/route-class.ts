import type { RouteClass } from "../../common/access-guard.js";

/**
 * The coordinator's paths by who may call them (common/access-guard.ts says what each class
 * needs). Coordinator-only knowledge, so it lives with the routes it describes.
 */
export function coordinatorRouteClass(path: string): RouteClass {
  // The dashboard's page holds no data (it sends the key it is given to /dashboard/api/state).
  if (path === "/coordinator/health" || path === "/coordinator/ready" || path === "/metrics" || path === "/dashboard") return "open";
  if (path === "/coordinator/health/heartbeat") return "cluster";
  if (path === "/coordinator/health/prefix-index" || path === "/coordinator/health/routing") return "admin";
  if (path.startsWith("/coordinator/workers/")) return "admin";
  return "client";
}
