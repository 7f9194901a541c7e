import pino, { type Logger as PinoLogger } from "pino";
import type { LogLevel } from "./config.js";

/**
 * JSON-lines logging (pino). Messages are constant event names (`session.start`); data goes in
 * fields. A request's logger binds request_id, then worker_id and session_id as they become known.
 *
 * Binding is lazy: `child()` of a request's logger (see `bindFields`) returns a small facade that
 * only remembers its fields; a line written at an enabled level goes to the root pino logger with
 * the fields merged in front of the line's own. pino's own `child()` serialises its bindings and
 * builds a logger object (a few µs) whether or not a line is ever written, three times a request;
 * a request whose lines are all below the level (the benchmarks run at warn) now costs nothing.
 * The output is the same JSON: pino writes a child's bindings right before the line's fields too.
 */
export interface LogFn {
  (fields: object, msg?: string): void;
  (msg: string): void;
}

export interface Logger {
  readonly level: string;
  fatal: LogFn;
  error: LogFn;
  warn: LogFn;
  info: LogFn;
  debug: LogFn;
  trace: LogFn;
  isLevelEnabled(level: string): boolean;
  child(fields: Record<string, unknown>): Logger;
}

/** The process's logger, as created (it can also be flushed at exit). */
export type RootLogger = PinoLogger;

export function createLogger(role: string, level: LogLevel, destination?: NodeJS.WritableStream): RootLogger {
  return pino(
    {
      level,
      base: { role, pid: process.pid },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
      // Secrets never reach a log line even when an object carrying them is logged whole.
      redact: { paths: ["authorization", "headers.authorization", "*.authorization", "api_key", "cluster_token"], censor: "[redacted]" },
    },
    destination ?? pino.destination({ fd: 1, sync: false }),
  );
}

type Level = "fatal" | "error" | "warn" | "info" | "debug" | "trace";

/**
 * Fields bound to a logger without a pino child. The chain (request → worker → session) is kept as
 * links to the parent; a written line walks it once. Fields objects are the callers' own and are
 * read when a line is written: pass a fresh literal.
 */
class BoundLogger implements Logger {
  constructor(
    private readonly root: Logger,
    private readonly parent: BoundLogger | undefined,
    private readonly fields: Record<string, unknown>,
  ) {}

  get level(): string {
    return this.root.level;
  }

  isLevelEnabled(level: string): boolean {
    return this.root.isLevelEnabled(level);
  }

  child(fields: Record<string, unknown>): Logger {
    return new BoundLogger(this.root, this, fields);
  }

  fatal(a: object | string, msg?: string): void {
    this.write("fatal", a, msg);
  }

  error(a: object | string, msg?: string): void {
    this.write("error", a, msg);
  }

  warn(a: object | string, msg?: string): void {
    this.write("warn", a, msg);
  }

  info(a: object | string, msg?: string): void {
    this.write("info", a, msg);
  }

  debug(a: object | string, msg?: string): void {
    this.write("debug", a, msg);
  }

  trace(a: object | string, msg?: string): void {
    this.write("trace", a, msg);
  }

  private write(level: Level, a: object | string, msg: string | undefined): void {
    if (!this.root.isLevelEnabled(level)) return;
    const line: Record<string, unknown> = {};
    this.bindInto(line);
    if (typeof a === "string") return this.root[level](line, a);
    // pino logs an Error given alone under `err`.
    if (a instanceof Error) line.err = a;
    else Object.assign(line, a);
    this.root[level](line, msg);
  }

  /** The chain's fields, outermost first (a later binding of the same key wins, as in pino). */
  private bindInto(line: Record<string, unknown>): void {
    this.parent?.bindInto(line);
    Object.assign(line, this.fields);
  }
}

/** `log` with `fields` bound lazily (no pino child until, and unless, a line is written). */
export function bindFields(log: Logger, fields: Record<string, unknown>): Logger {
  return log instanceof BoundLogger ? log.child(fields) : new BoundLogger(log, undefined, fields);
}
