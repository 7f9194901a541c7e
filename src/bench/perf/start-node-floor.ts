import { fileURLToPath } from "node:url";
import { startChild } from "../../common/process-harness.js";

/**
 * Starts node-floor-relay.js (the suite's Node floor) in front of `upstreams`, through the process
 * harness like the suite's other servers; ready once it prints its `server.listening` line, whose
 * `urls` are its ports in the order of `upstreams`. CPU and RSS are read from /proc for its one pid.
 */
const SCRIPT = fileURLToPath(new URL("./node-floor-relay.js", import.meta.url));

export interface NodeFloorRelay {
  urls: string[];
  pids(): number[];
  stop(): Promise<void>;
}

export async function startNodeFloor(upstreams: string[]): Promise<NodeFloorRelay> {
  const c = startChild({
    name: "node-floor", command: process.execPath, args: [SCRIPT, ...upstreams],
    env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "/tmp" },
  });
  const line = await c.waitListening(30_000).catch(async (err: unknown) => {
    await c.stop();
    throw err;
  });
  const urls = line.urls;
  if (!Array.isArray(urls) || urls.length !== upstreams.length) {
    await c.stop();
    throw new Error(`node-floor: listening line without one url per upstream: ${JSON.stringify(line)}`);
  }
  return { urls: urls as string[], pids: () => [c.pid], stop: () => c.stop(5000) };
}
