import { request } from "undici";
import type { Logger } from "../common/logger.js";

/**
 * On SIGTERM a worker asks its coordinators to drain it: the first coordinator that answers hands
 * the worker's cached conversations to other workers (they re-prefill the same tokens), so the
 * next turns find their KV elsewhere. One is enough; a coordinator that is down is skipped. Never
 * blocks the shutdown for longer than `timeoutMs`.
 */
export async function requestHandoff(
  coordinatorUrls: readonly string[],
  workerId: string,
  headers: Record<string, string>,
  timeoutMs: number,
  log: Logger,
): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (const base of coordinatorUrls) {
    const left = deadline - Date.now();
    if (left <= 0) break;
    try {
      const res = await request(`${base}/coordinator/workers/${encodeURIComponent(workerId)}/drain`, {
        method: "POST", body: "{}", headers: { "content-type": "application/json", ...headers },
        headersTimeout: left, bodyTimeout: left, signal: AbortSignal.timeout(left),
      });
      const text = await res.body.text();
      if (res.statusCode === 200) {
        log.info({ coordinator: base, result: JSON.parse(text) as unknown }, "worker.handoff_done");
        return true;
      }
      log.warn({ coordinator: base, status: res.statusCode }, "worker.handoff_refused");
    } catch (err) {
      log.warn({ coordinator: base, err: (err as Error).message }, "worker.handoff_failed");
    }
  }
  return false;
}
