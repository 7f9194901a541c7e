import { request } from "undici";
import type { Logger } from "../common/logger.js";
import type { Heartbeat } from "../protocol/heartbeat.js";

/**
 * Sends this worker's heartbeat to every coordinator, now and then every interval, forever. A
 * coordinator that is down is retried at the next beat; serving never waits for a heartbeat.
 */
export class HeartbeatSender {
  private timer: NodeJS.Timeout | undefined;
  private readonly failing = new Set<string>();
  private stopped = false;

  constructor(
    private readonly coordinatorUrls: readonly string[],
    private readonly intervalMs: number,
    private readonly build: () => Heartbeat,
    private readonly log: Logger,
    private readonly headers: Record<string, string> = {},
  ) {}

  start(): void {
    this.beat();
    this.timer = setInterval(() => this.beat(), this.intervalMs);
    this.timer.unref();
  }

  stop(): void {
    this.stopped = true;
    clearInterval(this.timer);
  }

  /** Sends one heartbeat to all coordinators now (also used to announce draining at once). */
  beat(): void {
    if (this.stopped) return;
    const body = JSON.stringify(this.build());
    for (const url of this.coordinatorUrls) void this.send(url, body);
  }

  private async send(url: string, body: string): Promise<void> {
    const timeoutMs = Math.min(5000, Math.max(200, this.intervalMs));
    try {
      const res = await request(`${url}/coordinator/health/heartbeat`, {
        method: "POST",
        body,
        headers: { "content-type": "application/json", ...this.headers },
        headersTimeout: timeoutMs,
        bodyTimeout: timeoutMs,
      });
      await res.body.dump();
      if (res.statusCode >= 300) throw new Error(`status ${res.statusCode}`);
      if (this.failing.delete(url)) this.log.info({ coordinator: url }, "heartbeat.recovered");
    } catch (err) {
      // Logged once per outage, not once per beat.
      if (!this.failing.has(url)) {
        this.failing.add(url);
        this.log.warn({ coordinator: url, err: (err as Error).message }, "heartbeat.failed");
      }
    }
  }
}
