import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { sendJson, type HttpServer } from "../../common/http-server.js";
import { ServingError } from "../../protocol/serving-error.js";
import { dashboardState, type DashboardDeps } from "../telemetry/dashboard-state.js";

/**
 * The live dashboard: `GET /dashboard` serves one self-contained page (src/dashboard/dashboard.html,
 * no build step, no external asset) that polls `GET /dashboard/api/state` every second.
 *
 * Access: open by default. The page itself holds no data; with API_KEYS set, the state endpoint
 * needs a key like the client APIs (api-key-guard.ts), and the page sends `Authorization: Bearer
 * <key>` when opened as `/dashboard#key=<key>` (the fragment never reaches a server or a log).
 */
export const DASHBOARD_ROUTES = { page: "/dashboard", state: "/dashboard/api/state" } as const;

// From dist/src/coordinator/routes/ (compiled) or src/coordinator/routes/ (sources) to src/dashboard/.
const PAGE_CANDIDATES = ["../../../../src/dashboard/dashboard.html", "../../dashboard/dashboard.html"];

function loadPage(): string | undefined {
  for (const rel of PAGE_CANDIDATES) {
    try {
      return readFileSync(fileURLToPath(new URL(rel, import.meta.url)), "utf8");
    } catch {
      // try the next location
    }
  }
  return undefined;
}

export function registerDashboardRoutes(server: HttpServer, deps: DashboardDeps): void {
  const page = loadPage();
  server.route("GET", DASHBOARD_ROUTES.page, (ctx) => {
    if (page === undefined) throw new ServingError("not_found", "the dashboard page is missing from this installation (src/dashboard/dashboard.html)");
    ctx.res.writeHead(200, {
      "content-type": "text/html; charset=utf-8",
      "content-length": Buffer.byteLength(page),
      "cache-control": "no-cache",
      // Everything is inline; nothing may load from elsewhere.
      "content-security-policy": "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; img-src data:",
    });
    ctx.res.end(page);
  });
  server.route("GET", DASHBOARD_ROUTES.state, (ctx) => {
    sendJson(ctx.res, 200, dashboardState(deps), { "cache-control": "no-store" });
  });
}
