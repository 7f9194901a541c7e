import { waitForRoutable } from "../cluster.js";
import { getJson } from "../http.js";
import { freePort } from "../ports.js";
import { spawnCli, startWorkerProc, type LogLine, type Proc, type Served } from "../processes.js";

/**
 * The processes of one chaos scenario on 127.0.0.1: a coordinator on a fixed port (so that it can
 * be killed and restarted where the workers send their heartbeats) and named workers, each of
 * which can be killed, stopped, resumed or restarted under the same id. Only processes started
 * here are ever signalled, by their pid.
 */
export interface ChaosWorkerSpec {
  id: string;
  /** Worker CLI flags (engine, sim timing, model). */
  args: string[];
  env?: Record<string, string>;
}

/** Coordinator settings of the chaos suite: short timeouts so that every fault ends within seconds. */
export const CHAOS_COORDINATOR_ENV: Record<string, string> = {
  HEARTBEAT_INTERVAL_MS: "250",
  FIRST_TOKEN_TIMEOUT_MS: "4000",
  STREAM_STALL_TIMEOUT_MS: "2000",
  PREFILL_TIMEOUT_MS: "6000",
  CLIENT_WRITE_TIMEOUT_MS: "2000",
  WORKER_CONNECT_TIMEOUT_MS: "1000",
};

/** Worker settings of the chaos suite: a prefilled session nobody decodes is freed after 3 s (default 30 s). */
export const CHAOS_WORKER_ENV: Record<string, string> = {
  HEARTBEAT_INTERVAL_MS: "250",
  DECODE_CLAIM_TIMEOUT_MS: "3000",
};

export interface Leaks {
  coordinator: number;
  /** Sessions, KV reservations and busy slots still held per live worker. */
  workers: Record<string, number>;
  total: number;
}

export class ChaosFleet {
  coordinator!: Served;
  /** Every coordinator process this fleet ran, in order (a restart adds one). */
  readonly coordinators: Proc[] = [];
  readonly workers = new Map<string, Served>();
  private readonly specs = new Map<string, ChaosWorkerSpec>();
  private port = 0;

  private constructor(private readonly coordinatorEnv: Record<string, string>) {}

  static async start(workers: ChaosWorkerSpec[], coordinatorEnv: Record<string, string> = {}): Promise<ChaosFleet> {
    const f = new ChaosFleet({ ...CHAOS_COORDINATOR_ENV, ...coordinatorEnv });
    try {
      f.port = await freePort();
      await f.startCoordinator();
      await Promise.all(workers.map((w) => f.startWorker(w)));
      await waitForRoutable(f.url, workers.length, 60_000);
    } catch (err) {
      await f.stop();
      throw err;
    }
    return f;
  }

  get url(): string {
    return this.coordinator.url;
  }

  async startCoordinator(): Promise<void> {
    const proc = spawnCli("coordinator", ["coordinator", "--port", String(this.port), "--host", "127.0.0.1"], this.coordinatorEnv);
    this.coordinators.push(proc);
    const line = await proc.waitListening();
    this.coordinator = { proc, url: String(line.url) };
  }

  async startWorker(spec: ChaosWorkerSpec): Promise<Served> {
    this.specs.set(spec.id, spec);
    const w = await startWorkerProc(`http://127.0.0.1:${this.port}`, {
      id: spec.id, args: spec.args, env: { ...CHAOS_WORKER_ENV, ...spec.env },
    });
    this.workers.set(spec.id, w);
    return w;
  }

  worker(id: string): Served {
    const w = this.workers.get(id);
    if (w === undefined) throw new Error(`no worker ${id}`);
    return w;
  }

  /** kill -9, then waits for the exit. */
  async killWorker(id: string): Promise<void> {
    const w = this.worker(id);
    w.proc.kill("SIGKILL");
    await w.proc.exited;
  }

  /** A new process under the same worker id (a new port: the coordinator learns it from heartbeats). */
  async restartWorker(id: string): Promise<Served> {
    const spec = this.specs.get(id);
    if (spec === undefined) throw new Error(`no worker ${id}`);
    return this.startWorker(spec);
  }

  async killCoordinator(): Promise<void> {
    this.coordinator.proc.kill("SIGKILL");
    await this.coordinator.proc.exited;
  }

  /** Request ids the coordinator(s) logged a `stream.failover` for. */
  failedOver(): Set<string> {
    return this.requestIdsLogged((l) => l.msg === "stream.failover");
  }

  requestIdsLogged(pred: (l: LogLine) => boolean): Set<string> {
    const out = new Set<string>();
    for (const c of this.coordinators) for (const l of c.logs) if (pred(l) && typeof l.request_id === "string") out.add(l.request_id);
    return out;
  }

  async waitRoutable(n: number, timeoutMs = 30_000): Promise<void> {
    await waitForRoutable(this.url, n, timeoutMs);
  }

  /**
   * Polls the coordinator's and every live worker's health until nothing is held (sessions, KV
   * reservations, busy slots), at most `boundMs`; returns what is still held then (0 = no leak).
   */
  async leaks(boundMs = 20_000): Promise<Leaks> {
    const deadline = Date.now() + boundMs;
    for (;;) {
      const now = await this.held();
      if (now.total === 0 || Date.now() > deadline) return now;
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  private async held(): Promise<Leaks> {
    const c = (await getJson(`${this.url}/coordinator/health`)).body as { active_sessions: number; kv_cache_bytes: number };
    const coordinator = c.active_sessions + (c.kv_cache_bytes !== 0 ? 1 : 0);
    const workers: Record<string, number> = {};
    let total = coordinator;
    for (const [id, w] of this.workers) {
      if (!w.proc.alive) continue;
      const h = (await getJson(`${w.url}/worker/health`)).body as { active_sessions: number; kv_reserved_bytes: number; slots: { busy: number } };
      // Slots free after their sequence is cleared; a busy slot with no session is a leak too.
      const n = Math.max(h.active_sessions, h.slots.busy) + (h.kv_reserved_bytes !== 0 && h.active_sessions === 0 ? 1 : 0);
      workers[id] = n;
      total += n;
    }
    return { coordinator, workers, total };
  }

  /** A worker's row in the coordinator's table. */
  async tableRow(id: string): Promise<{ worker_url: string; routable: boolean; breaker: string } | undefined> {
    const rows = (await getJson(`${this.url}/coordinator/health/workers`)).body.workers as { worker_id: string; worker_url: string; routable: boolean; breaker: string }[];
    return rows.find((r) => r.worker_id === id);
  }

  async stop(): Promise<void> {
    const procs = [...[...this.workers.values()].map((w) => w.proc), ...this.coordinators];
    for (const p of procs) if (p.alive) p.kill("SIGCONT");
    await Promise.all(procs.map((p) => p.stop()));
  }
}
