import { spawn, type ChildProcess } from "node:child_process";

/**
 * The one way the project starts and stops its own child processes (the bench, the soak, the chaos
 * suite, the integration tests, `serve`): spawn with piped output, read the JSON log lines from
 * stdout (the `server.listening` line carries the URL of a server started on port 0), stop with
 * SIGTERM and, after a grace period, SIGKILL. Every child started here is SIGKILLed if this process
 * exits first, so an interrupted run leaves nothing behind; only children started here are ever
 * signalled, by their pid.
 */
export interface LogLine {
  msg?: string;
  level?: string;
  [k: string]: unknown;
}

export interface ChildOptions {
  /** A name for error messages and verbose output. */
  name: string;
  command: string;
  args: readonly string[];
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** Copy every stdout and stderr line to our stderr, prefixed with the name. */
  verbose?: boolean;
  /**
   * Keep every JSON log line in `logs` (tests look back at them); a benchmark's server logs a line
   * a request, so it keeps none and only waits for the lines it asks for. Default true.
   */
  keepLogs?: boolean;
}

const running = new Set<ChildProcess>();
process.on("exit", () => {
  for (const c of running) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
});

/** Sends SIGTERM, then SIGKILL after `graceMs` (ms); resolves once the child has exited. */
export function stopChild(child: ChildProcess, graceMs = 10_000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const kill = setTimeout(() => child.kill("SIGKILL"), graceMs);
    child.once("exit", () => {
      clearTimeout(kill);
      resolve();
    });
    child.kill("SIGTERM");
  });
}

/** Registers a child started elsewhere (nginx, a one-shot script) for the kill-on-exit above. */
export function trackChild(child: ChildProcess): ChildProcess {
  running.add(child);
  child.once("exit", () => running.delete(child));
  return child;
}

export class ManagedChild {
  readonly logs: LogLine[] = [];
  /** Every stderr chunk (our servers write little there: logs go to stdout). */
  readonly stderr: string[] = [];
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  private watchers: { pred: (l: LogLine) => boolean; resolve: (l: LogLine) => void }[] = [];
  private partial = "";

  constructor(readonly child: ChildProcess, readonly name: string, private readonly verbose = false, private readonly keepLogs = true) {
    trackChild(child);
    child.stdout?.setEncoding("utf8").on("data", (chunk: string) => this.onStdout(chunk));
    child.stderr?.setEncoding("utf8").on("data", (chunk: string) => {
      this.stderr.push(chunk);
      if (verbose) process.stderr.write(`[${name}] ${chunk}`);
    });
    this.exited = new Promise((res) => child.once("exit", (code, signal) => res({ code, signal })));
  }

  get pid(): number {
    return this.child.pid!;
  }

  get alive(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  /** The last 2 kB of stderr, for error messages. */
  stderrTail(): string {
    return this.stderr.join("").slice(-2000);
  }

  private onStdout(chunk: string): void {
    const lines = (this.partial + chunk).split("\n");
    this.partial = lines.pop() ?? "";
    for (const line of lines) {
      if (this.verbose) process.stderr.write(`[${this.name}] ${line}\n`);
      let parsed: LogLine;
      try {
        parsed = JSON.parse(line) as LogLine;
      } catch {
        continue; // not a log line
      }
      if (this.keepLogs) this.logs.push(parsed);
      for (const w of [...this.watchers]) {
        if (w.pred(parsed)) {
          this.watchers.splice(this.watchers.indexOf(w), 1);
          w.resolve(parsed);
        }
      }
    }
  }

  /** Resolves with the first log line (past or future) that matches; rejects on timeout or exit. */
  waitForLog(pred: (l: LogLine) => boolean, timeoutMs = 30_000, what = "log line"): Promise<LogLine> {
    const seen = this.logs.find(pred);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.watchers = this.watchers.filter((w) => w.resolve !== done);
        reject(new Error(`${this.name}: no ${what} within ${timeoutMs} ms; stderr: ${this.stderrTail()}`));
      }, timeoutMs);
      const done = (l: LogLine) => {
        clearTimeout(timer);
        resolve(l);
      };
      this.watchers.push({ pred, resolve: done });
      void this.exited.then(({ code, signal }) => {
        clearTimeout(timer);
        reject(new Error(`${this.name} exited (${code ?? signal}) before ${what}; stderr: ${this.stderrTail()}`));
      });
    });
  }

  /** The `server.listening` line of a server started on port 0 (its `url` field says where). */
  waitListening(timeoutMs = 60_000): Promise<LogLine> {
    return this.waitForLog((l) => l.msg === "server.listening", timeoutMs, "server.listening");
  }

  kill(signal: NodeJS.Signals = "SIGTERM"): void {
    if (this.alive) this.child.kill(signal);
  }

  stop(graceMs = 10_000): Promise<void> {
    return stopChild(this.child, graceMs);
  }
}

/** Starts a child with stdout and stderr piped to a ManagedChild. */
export function startChild(o: ChildOptions): ManagedChild {
  const child = spawn(o.command, [...o.args], { cwd: o.cwd, env: o.env, stdio: ["ignore", "pipe", "pipe"] });
  return new ManagedChild(child, o.name, o.verbose, o.keepLogs);
}

/** Polls `url` until it answers 200; rejects when the child exits or `timeoutMs` passes. */
export async function waitHealthy(c: ManagedChild, url: string, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (!c.alive) throw new Error(`${c.name} exited (${c.child.exitCode ?? c.child.signalCode}) before it was healthy: ${c.stderrTail()}`);
    try {
      const res = await fetch(url);
      await res.body?.cancel();
      if (res.status === 200) return;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new Error(`${c.name} was not healthy at ${url} within ${timeoutMs} ms: ${c.stderrTail()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
