import { ConfigError, loadOptions } from "../common/config-parse.js";
import { checkWorkerConfig, coordinatorOptions, pullOptions, serveOptions, workerOptions } from "../common/config.js";
import { createLogger } from "../common/logger.js";
import { benchOptions } from "../bench/bench-options.js";
import { TOP_USAGE, usageOf } from "./usage.js";

// Roles are imported when chosen: a coordinator never loads llama.cpp's bindings (~35 MB of RSS).

/** The one entry point: `inference-engine <serve|coordinator|worker|pull|bench|help>`. */
const COMMANDS = {
  serve: { specs: serveOptions, summary: "Runs a coordinator and N local worker processes; Ctrl-C/SIGTERM stops them all." },
  coordinator: { specs: coordinatorOptions, summary: "Runs the coordinator: admission, routing and streaming for a fleet of workers." },
  worker: { specs: workerOptions, summary: "Runs one worker: loads a GGUF model and serves /worker/prefill, /worker/decode, /worker/generate (both in one exchange) and /worker/health." },
  pull: { specs: pullOptions, summary: "Downloads a GGUF model (hf:owner/repo/file.gguf or an https URL) into the models folder: resumable, checksum-verified." },
  bench: { specs: benchOptions, summary: "Load-tests a coordinator (seed or OpenAI API) or workers directly and reports throughput, TTFT, ITL, E2E and goodput." },
} as const;

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (command === undefined || command === "help" || command === "--help" || command === "-h") {
    const sub = rest[0] as keyof typeof COMMANDS | undefined;
    console.log(sub && sub in COMMANDS ? usageOf(sub, COMMANDS[sub].summary, COMMANDS[sub].specs) : TOP_USAGE);
    return 0;
  }
  if (rest.includes("--help") || rest.includes("-h")) {
    if (command in COMMANDS) {
      const c = COMMANDS[command as keyof typeof COMMANDS];
      console.log(usageOf(command, c.summary, c.specs));
      return 0;
    }
  }
  switch (command) {
    case "coordinator": {
      const { config } = loadOptions(coordinatorOptions, rest, process.env);
      const log = createLogger("coordinator", config.logLevel);
      const { startCoordinator } = await import("../coordinator/start-coordinator.js");
      const running = await startCoordinator(config, { log });
      await untilSignal();
      await running.drain(config.coordinatorDrainTimeoutMs);
      await running.close();
      log.info({}, "coordinator.stopped");
      log.flush();
      return 0;
    }
    case "worker": {
      const { config } = loadOptions(workerOptions, rest, process.env);
      checkWorkerConfig(config);
      const log = createLogger("worker", config.logLevel);
      const { startWorker } = await import("../worker/start-worker.js");
      const running = await startWorker(config, { log, localWorkers: config.localWorkers, modelsDir: config.modelsDir });
      await untilSignal();
      await running.shutdown();
      log.flush();
      return 0;
    }
    case "pull": {
      const { config, positionals } = loadOptions(pullOptions, rest, process.env);
      const { runPull } = await import("./pull.js");
      return runPull(config, positionals);
    }
    case "bench":
      return (await import("../bench/run-bench.js")).runBenchCli(rest);
    case "serve": {
      const { config } = loadOptions(serveOptions, rest, process.env);
      checkWorkerConfig(config);
      const { runServe } = await import("./serve.js");
      return runServe(config);
    }
    default:
      console.error(`unknown command '${command}'\n\n${TOP_USAGE}`);
      return 2;
  }
}

function untilSignal(): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    const on = (sig: NodeJS.Signals) => {
      process.off("SIGTERM", on);
      process.off("SIGINT", on);
      resolve(sig);
    };
    process.on("SIGTERM", on);
    process.on("SIGINT", on);
  });
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
    // Handles left by libraries (keep-alive sockets, native threads) must not keep a stopped process alive.
    setTimeout(() => process.exit(code), 2000).unref();
  },
  (err) => {
    if (err instanceof ConfigError) console.error(`configuration error: ${err.message}`);
    else console.error(err instanceof Error ? (err.stack ?? err.message) : String(err));
    process.exit(err instanceof ConfigError ? 2 : 1);
  },
);
