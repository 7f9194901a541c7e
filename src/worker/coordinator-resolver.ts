import { lookup } from "node:dns/promises";
import { isIP } from "node:net";

/**
 * Turns COORDINATOR_URL's entries into the coordinator addresses to heartbeat. An entry whose host
 * is a DNS name is resolved again on every call, and each address of the answer becomes its own
 * coordinator (the Kubernetes headless-Service pattern: one name, one A record per coordinator
 * pod), so coordinators are added and dropped as the answer changes. An entry with an IP literal
 * (or `localhost`, which names this machine's one coordinator whatever it resolves to) is kept as
 * written. When a lookup fails, that entry keeps the addresses of its last answer: a DNS outage
 * must not cut a worker off from coordinators that are still up.
 */
export type LookupAll = (host: string) => Promise<readonly string[]>;

export const systemLookupAll: LookupAll = async (host) => (await lookup(host, { all: true })).map((a) => a.address);

export class CoordinatorResolver {
  /** Last good answer per entry (entry URL → address URLs, in the answer's order). */
  private readonly last = new Map<string, readonly string[]>();

  constructor(
    private readonly entries: readonly string[],
    private readonly lookupAll: LookupAll = systemLookupAll,
  ) {}

  /** Whether any entry needs DNS (if none, the list never changes and needs no refresh). */
  get dynamic(): boolean {
    return this.entries.some((e) => needsLookup(new URL(e).hostname));
  }

  /** The addresses to heartbeat now, deduplicated; `failed` lists the entries whose lookup failed. */
  async resolve(): Promise<{ urls: string[]; failed: { entry: string; error: string }[] }> {
    const failed: { entry: string; error: string }[] = [];
    const lists = await Promise.all(this.entries.map(async (entry) => {
      const u = new URL(entry);
      if (!needsLookup(u.hostname)) return [trimSlash(entry)];
      try {
        const addrs = [...new Set(await this.lookupAll(u.hostname))];
        const urls = addrs.map((a) => withHost(u, a));
        this.last.set(entry, urls);
        return urls;
      } catch (err) {
        failed.push({ entry, error: (err as Error).message });
        return this.last.get(entry) ?? [];
      }
    }));
    return { urls: [...new Set(lists.flat())], failed };
  }
}

/** An entry as written, without a trailing slash (paths are appended to it). */
export function trimSlash(url: string): string {
  return url.replace(/\/+$/, "");
}

/** Whether a URL's host is a DNS name to resolve (not an IP literal, not `localhost`). */
export function needsLookup(hostname: string): boolean {
  const h = hostname.replace(/^\[|\]$/g, "");
  return isIP(h) === 0 && h !== "localhost";
}

/** `u` with its host replaced by an address (IPv6 in brackets), without a trailing slash. */
function withHost(u: URL, address: string): string {
  const host = isIP(address) === 6 ? `[${address}]` : address;
  const port = u.port ? `:${u.port}` : "";
  const path = u.pathname === "/" ? "" : u.pathname.replace(/\/+$/, "");
  return `${u.protocol}//${host}${port}${path}`;
}
