import { createHash } from "node:crypto";
import type { InferenceJob } from "./inference-job.js";

/**
 * A request's fingerprint for the poison store: sha256 (hex) over the model, the prompt or the
 * messages, and the sampling parameters (grammar and json_schema included), as canonical JSON
 * (object keys sorted). max_tokens is left out on purpose: a poison prompt with another length
 * is the same poison.
 */
export function requestFingerprint(model: string, job: Pick<InferenceJob, "prompt" | "messages" | "sampling">): string {
  const subject = { model, prompt: job.prompt ?? null, messages: job.messages ?? null, sampling: job.sampling };
  return createHash("sha256").update(canonicalJson(subject)).digest("hex");
}

/** JSON with object keys in sorted order, so equal values hash equally whatever their key order. */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== "object") return JSON.stringify(value) ?? "null";
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(",")}]`;
  const keys = Object.keys(value).sort();
  const parts: string[] = [];
  for (const k of keys) {
    const v = (value as Record<string, unknown>)[k];
    if (v === undefined) continue;
    parts.push(`${JSON.stringify(k)}:${canonicalJson(v)}`);
  }
  return `{${parts.join(",")}}`;
}
