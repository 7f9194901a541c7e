import { BlockList, isIP } from "node:net";
import { ServingError } from "../../protocol/serving-error.js";
import { MIN_HEARTBEAT_INTERVAL_MS, type Heartbeat } from "../../protocol/heartbeat.js";
import type { WorkerTable } from "./worker-table.js";

/**
 * What a heartbeat may change in the worker table, checked before it is recorded:
 * - its announced interval is clamped to [50 ms, MAX_HEARTBEAT_INTERVAL_MS], so a worker that
 *   stops beating always expires (3 intervals) and a tiny interval cannot flap it;
 * - a new worker beyond MAX_WORKERS entries gets 429 too_many_workers (an expired entry is forgotten
 *   first to make room);
 * - with WORKER_ALLOWLIST, the worker_url's host must be one of its IPs, CIDRs or names (403);
 * - a worker's URL is fixed while it is fresh: a beat with the same id and another URL gets 409
 *   worker_url_conflict. Once the entry expired (3 missed intervals: the old process is gone or
 *   cut off), the id may come back with a new URL. Beats are authenticated by the cluster token (or
 *   come from loopback), so this guards against mistakes and a stolen id, not against a peer
 *   holding the token.
 */
export interface HeartbeatPolicy {
  maxWorkers: number;
  maxIntervalMs: number;
  allowlist: readonly string[];
}

export class HeartbeatAdmission {
  private readonly ips = new BlockList();
  private readonly names = new Set<string>();

  constructor(private readonly p: HeartbeatPolicy) {
    for (const entry of p.allowlist) {
      const [addr, bits] = entry.split("/") as [string, string | undefined];
      const family = isIP(addr);
      if (family === 0) this.names.add(addr.toLowerCase());
      else if (bits === undefined) this.ips.addAddress(addr, family === 4 ? "ipv4" : "ipv6");
      else this.ips.addSubnet(addr, Number(bits), family === 4 ? "ipv4" : "ipv6");
    }
  }

  /** The interval to record (ms); throws a ServingError when the beat must not be recorded. */
  check(hb: Heartbeat, table: WorkerTable, defaultIntervalMs: number): number {
    if (this.p.allowlist.length > 0 && !this.allowed(hb.worker_url)) {
      throw new ServingError("forbidden", "worker_url is not in this coordinator's WORKER_ALLOWLIST", { param: "worker_url" });
    }
    const known = table.get(hb.worker_id);
    if (known === undefined) {
      if (table.size >= this.p.maxWorkers && !table.forgetOneExpired()) {
        throw new ServingError("too_many_workers", `the worker table holds its limit of ${this.p.maxWorkers} workers (MAX_WORKERS)`, { retryAfterS: 60 });
      }
    } else if (known.url !== hb.worker_url && table.isFresh(known)) {
      throw new ServingError("worker_url_conflict",
        `worker '${hb.worker_id}' is registered at another URL and still fresh; a new URL is accepted once it expired (3 missed heartbeats)`,
        { param: "worker_url" });
    }
    const asked = hb.interval_ms ?? defaultIntervalMs;
    return Math.min(this.p.maxIntervalMs, Math.max(MIN_HEARTBEAT_INTERVAL_MS, asked));
  }

  private allowed(url: string): boolean {
    let host = new URL(url).hostname.toLowerCase();
    if (host.startsWith("[") && host.endsWith("]")) host = host.slice(1, -1);
    const family = isIP(host);
    if (family === 0) return this.names.has(host);
    return this.ips.check(host, family === 4 ? "ipv4" : "ipv6");
  }
}
