import pino, { type Logger as PinoLogger } from "pino";
import type { LogLevel } from "./config.js";

/**
 * JSON-lines logging (pino). Messages are constant event names (`session.start`); data goes in
 * fields. Child loggers bind request_id, session_id and worker_id as they become known.
 */
export type Logger = PinoLogger;

export function createLogger(role: string, level: LogLevel, destination?: NodeJS.WritableStream): Logger {
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
