import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { request } from "undici";

/**
 * A misbehaving third-party worker on 127.0.0.1 port 0: it sends the coordinator real heartbeats
 * (so it is routable) and answers worker endpoints with `handle`. Tests use it only for behaviour
 * our own worker never shows (stalls after its headers, wrong credentials, huge answers).
 */
export interface FakeWorker {
  url: string;
  /** Requests it received, by path. */
  hits: Map<string, number>;
  stop(): Promise<void>;
}

export async function startFakeWorker(
  coordinatorUrl: string,
  id: string,
  handle: (req: IncomingMessage, res: ServerResponse) => void,
  limits: { contextSize?: number; maxSessionKvBytes?: number } = {},
): Promise<FakeWorker> {
  const hits = new Map<string, number>();
  const server: Server = createServer((req, res) => {
    const path = req.url ?? "";
    hits.set(path, (hits.get(path) ?? 0) + 1);
    req.resume();
    req.on("end", () => handle(req, res));
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const beat = async () => {
    const body = {
      worker_id: id, worker_url: url, timestamp: Date.now(), interval_ms: 200,
      health: {
        alive: true, active_sessions: 0, kv_cache_bytes: 0, draining: false,
        model: { id: "fake", aliases: [], context_size: limits.contextSize ?? 2048, kv_bytes_per_token: 1000 },
        limits: { max_sessions: 10, max_session_kv_bytes: limits.maxSessionKvBytes ?? 100_000_000, max_kv_bytes: 1_000_000_000 },
        slots: { total: 4, busy: 0 },
      },
    };
    try {
      const res = await request(`${coordinatorUrl}/coordinator/health/heartbeat`, {
        method: "POST", body: JSON.stringify(body), headers: { "content-type": "application/json" },
      });
      await res.body.dump();
    } catch {
      // the coordinator may be stopping
    }
  };
  await beat();
  const timer = setInterval(() => void beat(), 200);
  return {
    url, hits,
    async stop() {
      clearInterval(timer);
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}
