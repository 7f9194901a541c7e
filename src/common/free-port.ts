import { createServer } from "node:net";

/**
 * A loopback port that was free a moment ago, for a process started next (benchmarks, tests, a
 * process restarted on the same port). Another process could take it in between; callers retry.
 */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => resolve(port));
    });
  });
}
