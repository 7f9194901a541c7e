import type { Session } from "./session.js";
import type { SessionTable } from "./session-table.js";

/**
 * Whether the worker takes new sessions, and the one way out of a session for the routes
 * (`end`), which wakes a shutdown drain waiting for the last running session.
 */
export class WorkerDrain {
  /** Refusing new sessions and cache: an operator's drain (undone by undrain) or shutdown's. */
  draining = false;
  /** Set once shutdown's drain began: nothing undoes it. */
  shuttingDown = false;
  private idleWaiters: (() => void)[] = [];

  constructor(private readonly sessions: SessionTable) {}

  /** Refuses new sessions and resolves when running ones are done (or `timeoutMs` passed). */
  async drain(timeoutMs: number): Promise<void> {
    this.draining = true;
    this.shuttingDown = true;
    this.sessions.stopKeeping();
    if (this.sessions.count > 0) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        new Promise<void>((resolve) => this.idleWaiters.push(resolve)),
        new Promise<void>((resolve) => (timer = setTimeout(resolve, timeoutMs))),
      ]);
      clearTimeout(timer);
    }
    this.sessions.endAll("drain");
  }

  end(session: Session, reason: Parameters<SessionTable["end"]>[1]): void {
    this.sessions.end(session, reason);
    if (this.sessions.count === 0 && this.idleWaiters.length > 0) {
      for (const w of this.idleWaiters.splice(0)) w();
    }
  }

  sweep(): void {
    if (this.sessions.sweep() > 0 && this.sessions.count === 0) for (const w of this.idleWaiters.splice(0)) w();
  }
}
