import { request } from "undici";
import type { Logger } from "../common/logger.js";
import type { Heartbeat } from "../protocol/heartbeat.js";
import type { CacheAck } from "./cache-event-log.js";
import { CoordinatorResolver, needsLookup, trimSlash, type LookupAll } from "./coordinator-resolver.js";

/**
 * Sends this worker's heartbeat to every coordinator, now and then every interval, forever. A
 * coordinator that is down is retried at the next beat; serving never waits for a heartbeat.
 *
 * Each coordinator answers with the prefix-cache state it holds of this worker (its ack); the next
 * beat to it carries what changed since (cache-event-log.ts). Beats to one coordinator never
 * overlap: a beat asked for while one is in flight goes out when it returns, with the newest ack.
 * `soon()` asks for a beat for cache changes at once (after the current I/O turn, which batches the
 * sessions ending together), so that a change reaches coordinators before the next request that
 * could use it. Under load the one-in-flight rule batches the rest: at most one beat per
 * coordinator per round trip, each carrying every change since the last.
 *
 * COORDINATOR_URL may name DNS names: before each interval's beat the names are resolved again
 * (coordinator-resolver.ts) and every address is a coordinator of its own; a new address gets a
 * beat (with a cache snapshot) at once, a vanished one gets no more beats. So a coordinator added
 * to the name's records knows this worker within one interval (plus the DNS answer's TTL).
 */

interface Peer {
  url: string;
  ack: CacheAck | undefined;
  inFlight: boolean;
  again: boolean;
  failing: boolean;
  /** The cache log's position carried by the last beat this coordinator answered (undefined: none yet). */
  delivered: CacheAck | undefined;
}

/** A stream's end waiting for its cache event to reach every coordinator (announced()). */
interface Announcement {
  epoch: string;
  seq: number;
  done: () => void;
}

export class HeartbeatSender {
  private timer: NodeJS.Timeout | undefined;
  private flushPending = false;
  /** Coordinators by address URL; the map's order is the order of COORDINATOR_URL's answer. */
  private peers = new Map<string, Peer>();
  private stopped = false;
  private resolving = false;
  private readonly resolver: CoordinatorResolver;
  /** Entries whose last lookup failed (logged once per outage). */
  private readonly lookupFailing = new Set<string>();
  private announcements: Announcement[] = [];

  constructor(
    coordinatorUrls: readonly string[],
    private readonly intervalMs: number,
    private readonly build: (ack: CacheAck | undefined) => Heartbeat,
    private readonly log: Logger,
    private readonly headers: Record<string, string> = {},
    lookupAll?: LookupAll,
  ) {
    this.resolver = new CoordinatorResolver(coordinatorUrls, lookupAll);
    // IP literals are known before the first lookup; names join when it answers.
    for (const url of coordinatorUrls) {
      if (!needsLookup(new URL(url).hostname)) this.peers.set(trimSlash(url), newPeer(trimSlash(url)));
    }
  }

  start(): void {
    void this.tick();
    this.timer = setInterval(() => void this.tick(), this.intervalMs);
    this.timer.unref();
  }

  /** The coordinators heartbeated now (addresses, after DNS). */
  coordinatorUrls(): string[] {
    return [...this.peers.keys()];
  }

  /**
   * Beats the coordinators known now (a slow DNS answer must not delay them), then resolves the
   * names again (when any) and beats the coordinators the answer added at once.
   */
  private async tick(): Promise<void> {
    this.beat();
    // One lookup at a time: a slow resolver must not pile lookups up, nor apply an older answer last.
    if (!this.resolver.dynamic || this.resolving) return;
    this.resolving = true;
    try {
      const before = new Set(this.peers.keys());
      await this.refresh();
      if (this.stopped) return;
      for (const p of this.peers.values()) if (!before.has(p.url)) this.send(p);
    } finally {
      this.resolving = false;
    }
  }

  /** Applies a fresh DNS answer: keeps the state of addresses still there, adds new ones, drops the rest. */
  async refresh(): Promise<void> {
    const { urls, failed } = await this.resolver.resolve();
    for (const f of failed) {
      if (!this.lookupFailing.has(f.entry)) this.log.warn({ coordinator: f.entry, err: f.error }, "heartbeat.lookup_failed");
      this.lookupFailing.add(f.entry);
    }
    for (const e of [...this.lookupFailing]) if (!failed.some((f) => f.entry === e)) this.lookupFailing.delete(e);
    if (this.stopped) return;
    const next = new Map<string, Peer>();
    for (const url of urls) next.set(url, this.peers.get(url) ?? newPeer(url));
    for (const url of next.keys()) if (!this.peers.has(url)) this.log.info({ coordinator: url }, "heartbeat.coordinator_added");
    for (const url of this.peers.keys()) if (!next.has(url)) this.log.info({ coordinator: url }, "heartbeat.coordinator_dropped");
    this.peers = next;
  }

  stop(): void {
    this.stopped = true;
    clearInterval(this.timer);
    for (const a of this.announcements.splice(0)) a.done();
  }

  /**
   * Resolves once every coordinator has answered a beat carrying cache event `seq` of `epoch`, or
   * after `timeoutMs`, whichever comes first (true: all answered). A coordinator whose last beat
   * failed is not waited for (it learns from its snapshot when it is back), so a dead coordinator
   * delays a stream's end at most once per outage, by at most `timeoutMs`. The beat itself goes out
   * through `soon()` (the cache log's event asked for it), batched with other streams ending now.
   */
  announced(epoch: string, seq: number, timeoutMs: number): Promise<boolean> {
    if (this.stopped || this.reached(epoch, seq)) return Promise.resolve(true);
    if (timeoutMs <= 0) return Promise.resolve(false);
    return new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => {
        this.announcements = this.announcements.filter((x) => x !== a);
        resolve(false);
      }, timeoutMs);
      const a: Announcement = { epoch, seq, done: () => { clearTimeout(timer); resolve(true); } };
      this.announcements.push(a);
      this.soon();
    });
  }

  /** Whether every coordinator not failing has answered a beat that carried `seq` (or a later event). */
  private reached(epoch: string, seq: number): boolean {
    for (const p of this.peers.values()) {
      if (p.failing) continue;
      if (p.delivered === undefined || p.delivered.epoch !== epoch || p.delivered.seq < seq) return false;
    }
    return true;
  }

  /** Releases the stream ends whose cache event every coordinator has now answered. */
  private settleAnnouncements(): void {
    if (this.announcements.length === 0) return;
    const waiting: Announcement[] = [];
    for (const a of this.announcements) {
      if (this.reached(a.epoch, a.seq)) a.done();
      else waiting.push(a);
    }
    this.announcements = waiting;
  }

  /** Sends one heartbeat to all coordinators now (also used to announce draining at once). */
  beat(): void {
    if (this.stopped) return;
    for (const p of this.peers.values()) this.send(p);
  }

  /** A beat for cache changes, soon (one for any number of calls meanwhile). */
  soon(): void {
    if (this.stopped || this.flushPending) return;
    this.flushPending = true;
    setImmediate(() => {
      this.flushPending = false;
      this.beat();
    });
  }

  private send(p: Peer): void {
    if (p.inFlight) {
      p.again = true;
      return;
    }
    p.inFlight = true;
    p.again = false;
    void this.post(p).finally(() => {
      p.inFlight = false;
      this.settleAnnouncements();
      if (p.again && !this.stopped) this.send(p);
    });
  }

  private async post(p: Peer): Promise<void> {
    const timeoutMs = Math.min(5000, Math.max(200, this.intervalMs));
    const hb = this.build(p.ack);
    const body = JSON.stringify(hb);
    try {
      const res = await request(`${p.url}/coordinator/health/heartbeat`, {
        method: "POST",
        body,
        headers: { "content-type": "application/json", ...this.headers },
        headersTimeout: timeoutMs,
        bodyTimeout: timeoutMs,
      });
      const text = await res.body.text();
      // The coordinator's reason (cluster_token_required, worker_url_conflict, …) says what to fix.
      if (res.statusCode >= 300) throw new Error(`status ${res.statusCode}${refusalOf(text)}`);
      const before = p.ack;
      p.ack = ackOf(text);
      // Answered: the coordinator now holds what this beat carried (a seed coordinator, which
      // indexes nothing, answers without an ack and is not waited for either).
      // A coordinator without our cache state gets a snapshot at once, not a beat later.
      if (p.ack === undefined && before !== undefined) p.again = true;
      else if (hb.cache !== undefined) p.delivered = { epoch: hb.cache.epoch, seq: hb.cache.seq };
      if (p.failing) {
        p.failing = false;
        this.log.info({ coordinator: p.url }, "heartbeat.recovered");
      }
    } catch (err) {
      // Logged once per outage, not once per beat.
      if (!p.failing) {
        p.failing = true;
        this.log.warn({ coordinator: p.url, err: (err as Error).message }, "heartbeat.failed");
      }
    }
  }
}

function newPeer(url: string): Peer {
  return { url, ack: undefined, inFlight: false, again: false, failing: false, delivered: undefined };
}

/** The coordinator's cache ack; undefined when it sent none (a seed coordinator) or holds nothing. */
function ackOf(text: string): CacheAck | undefined {
  try {
    const c = (JSON.parse(text) as { cache?: { epoch?: unknown; seq?: unknown } | null }).cache;
    if (c && typeof c.epoch === "string" && typeof c.seq === "number") return { epoch: c.epoch, seq: c.seq };
  } catch {
    // not JSON: a coordinator that does not index caches
  }
  return undefined;
}

/** ` (reason: message)` of a coordinator's seed-shaped error body, or "" (bounded: 300 characters). */
function refusalOf(text: string): string {
  try {
    const b = JSON.parse(text) as { reason?: unknown; error?: unknown };
    if (typeof b.reason === "string") return ` (${b.reason}: ${String(b.error ?? "").slice(0, 300)})`;
  } catch {
    // not JSON
  }
  return "";
}
