// Preloaded into a coordinator (node --import) by refusal-under-relay.mjs: the event loop's delay
// (perf_hooks.monitorEventLoopDelay, 1 ms resolution), reset on SIGUSR2 and written as JSON to
// $ELD_FILE every 250 ms (ms: p50, p99, max; count of samples).
import { monitorEventLoopDelay } from "node:perf_hooks";
import { writeFileSync } from "node:fs";

const file = process.env.ELD_FILE;
if (file !== undefined) {
  const h = monitorEventLoopDelay({ resolution: 1 });
  h.enable();
  process.on("SIGUSR2", () => h.reset());
  const write = () => {
    const ms = (ns) => Math.round(ns / 1e4) / 100;
    writeFileSync(file, JSON.stringify({ p50: ms(h.percentile(50)), p99: ms(h.percentile(99)), max: ms(h.max), count: h.count }));
  };
  setInterval(write, 250).unref();
}
