/**
 * A worker's circuit breaker. It counts worker faults only (connect errors, 5xx, timeouts, broken
 * streams), never a 4xx caused by the request, so bad clients cannot take workers out of rotation.
 *
 *   closed ──(a connect error or a timeout, or FAULTS_TO_OPEN other faults in a row)──▶ open
 *   open ──(cooldown passed, or a heartbeat proves the process alive)──▶ half-open
 *   half-open: one probe request at a time; success ▶ closed, fault ▶ open with the cooldown doubled
 *
 * Cooldown starts at 1 s and doubles up to 30 s. Time arrives as arguments (pure).
 */
export type BreakerState = "closed" | "open" | "half_open";
export type FaultKind = "connect" | "timeout" | "status" | "stream" | "protocol";

export const FAULTS_TO_OPEN = 3;
export const BASE_COOLDOWN_MS = 1000;
export const MAX_COOLDOWN_MS = 30_000;

export class CircuitBreaker {
  private stateValue: BreakerState = "closed";
  private consecutive = 0;
  private openedAtMs = 0;
  private cooldownMs = BASE_COOLDOWN_MS;
  private probing = false;
  /** Total transitions into open, for metrics. */
  opens = 0;

  state(nowMs: number): BreakerState {
    if (this.stateValue === "open" && nowMs - this.openedAtMs >= this.cooldownMs) {
      this.stateValue = "half_open";
      this.probing = false;
    }
    return this.stateValue;
  }

  /** Whether a new request may go to this worker now (half-open: only while no probe is out). */
  allows(nowMs: number): boolean {
    const s = this.state(nowMs);
    return s === "closed" || (s === "half_open" && !this.probing);
  }

  /** Called once a request has been dispatched here; in half-open it becomes the probe. */
  dispatched(nowMs: number): void {
    if (this.state(nowMs) === "half_open") this.probing = true;
  }

  success(nowMs: number): void {
    this.consecutive = 0;
    if (this.state(nowMs) !== "closed") {
      this.stateValue = "closed";
      this.cooldownMs = BASE_COOLDOWN_MS;
      this.probing = false;
    }
  }

  fault(kind: FaultKind, nowMs: number): void {
    const s = this.state(nowMs);
    this.consecutive++;
    if (s === "half_open") {
      this.open(nowMs, Math.min(MAX_COOLDOWN_MS, this.cooldownMs * 2));
    } else if (s === "closed" && (kind === "connect" || kind === "timeout" || this.consecutive >= FAULTS_TO_OPEN)) {
      this.open(nowMs, this.cooldownMs);
    }
  }

  /** A heartbeat shows the process is up: an open breaker may probe at once. */
  heartbeat(nowMs: number): void {
    if (this.state(nowMs) === "open") {
      this.stateValue = "half_open";
      this.probing = false;
    }
  }

  private open(nowMs: number, cooldownMs: number): void {
    this.stateValue = "open";
    this.openedAtMs = nowMs;
    this.cooldownMs = cooldownMs;
    this.probing = false;
    this.opens++;
  }
}
