import { ServingError } from "../../protocol/serving-error.js";
import type { AdmissionDecision } from "./admission.js";
import type { AdmissionGate, GateRequest } from "./admission-gate.js";
import type { Decision } from "../scheduler/types.js";

/**
 * The one way into admission for a request: admitted, rejected (with its reason, a ServingError
 * the front door answers with), or timed out in the queue. The queue's ticket protocol stays
 * inside: an admitted request calls `claimed()` once it holds its capacity (its session lease),
 * which lets the next one in line be checked; `claimed()` is idempotent.
 */
export type AdmissionOutcome =
  | {
      kind: "admitted";
      admission: Extract<AdmissionDecision, { admitted: true }>;
      /** The first attempt's decision (ok). */
      decision: Extract<Decision, { ok: true }>;
      /** Time spent in the queue (ms; 0 when admitted at once). */
      queuedMs: number;
      claimed(): void;
    }
  | { kind: "rejected"; reason: ServingError }
  | { kind: "timed_out"; reason: ServingError };

export async function enterAdmission(gate: AdmissionGate, r: GateRequest): Promise<AdmissionOutcome> {
  try {
    // The fast path answers synchronously; the caller claims within the same turn of the event loop.
    const a = gate.enter(r);
    const admitted = a instanceof Promise ? await a : a;
    let left = false;
    return {
      kind: "admitted", admission: admitted.admission, decision: admitted.decision, queuedMs: admitted.queuedMs,
      claimed: () => {
        if (left) return;
        left = true;
        admitted.ticket?.leave();
      },
    };
  } catch (err) {
    if (!(err instanceof ServingError)) throw err;
    return err.code === "queue_timeout" ? { kind: "timed_out", reason: err } : { kind: "rejected", reason: err };
  }
}
