import { loadOptions } from "../../common/config-parse.js";
import { workerOptions } from "../../common/config.js";
import { createLogger } from "../../common/logger.js";
import { startWorker, type RunningWorker } from "../../worker/start-worker.js";

/**
 * Many sim workers in one process, for the coordinator-scale section: a hundred worker processes
 * would take ~5 GB on a shared machine, while the coordinator cannot tell the difference (each
 * worker has its own port, id, heartbeat sender and session table; only the event loop is shared).
 *   node sim-worker-host.js <count> <id-prefix> [worker flags…]   (COORDINATOR_URL etc. from the environment)
 * Prints one line `ready <count>` once every worker listens; SIGTERM shuts them all down.
 */
async function main(argv: string[]): Promise<void> {
  const count = Number(argv[0]);
  const prefix = argv[1]!;
  const { config } = loadOptions(workerOptions, ["--engine", "sim", "--port", "0", "--host", "127.0.0.1", ...argv.slice(2)], process.env);
  const log = createLogger("worker", "warn");
  const workers: RunningWorker[] = [];
  for (let i = 1; i <= count; i++) {
    workers.push(await startWorker({ ...config, workerId: `${prefix}-${i}` }, { log, localWorkers: 1, modelsDir: config.modelsDir }));
  }
  process.stdout.write(`ready ${workers.length}\n`);
  await new Promise<void>((resolve) => process.once("SIGTERM", () => resolve()));
  await Promise.all(workers.map((w) => w.shutdown()));
  process.exit(0);
}

main(process.argv.slice(2)).catch((err) => {
  console.error(err instanceof Error ? (err.stack ?? err.message) : String(err));
  process.exit(1);
});
