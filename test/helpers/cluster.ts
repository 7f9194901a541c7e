import { getJson, waitFor } from "./http.js";
import { startCoordinatorProc, startWorkerProc, type Served } from "./processes.js";

/** A coordinator and N workers on loopback, ready when the coordinator sees all workers fresh. */
export interface Cluster {
  url: string;
  coordinator: Served;
  workers: Served[];
  stop(): Promise<void>;
}

export interface ClusterOptions {
  workers: number;
  model?: string;
  coordinatorEnv?: Record<string, string>;
  coordinatorArgs?: string[];
  workerEnv?: Record<string, string>;
  workerArgs?: string[];
}

export async function startCluster(o: ClusterOptions): Promise<Cluster> {
  const coordinator = await startCoordinatorProc(o.coordinatorEnv, o.coordinatorArgs);
  const workers = await Promise.all(
    Array.from({ length: o.workers }, (_, i) =>
      startWorkerProc(coordinator.url, { model: o.model, id: `w${i + 1}`, env: o.workerEnv, args: o.workerArgs }),
    ),
  );
  await waitForRoutable(coordinator.url, o.workers);
  return {
    url: coordinator.url,
    coordinator,
    workers,
    async stop() {
      await Promise.all([...workers.map((w) => w.proc.stop()), coordinator.proc.stop()]);
    },
  };
}

export async function waitForRoutable(url: string, n: number, timeoutMs = 30_000): Promise<void> {
  await waitFor(async () => (await getJson(`${url}/coordinator/health`)).body.workers.routable === n, `${n} routable workers`, timeoutMs);
}

export async function workerHealth(url: string): Promise<any> {
  return (await getJson(`${url}/worker/health`)).body;
}

/** A worker's health once it runs no session, no slot is busy and no KV is reserved. */
export async function waitWorkerIdle(url: string): Promise<any> {
  return waitFor(async () => {
    const h = await workerHealth(url);
    return h.active_sessions === 0 && h.slots.busy === 0 && h.kv_reserved_bytes === 0 ? h : undefined;
  }, `an idle worker at ${url}`);
}
