import { ServingError } from "./serving-error.js";
import { enforceableSchema } from "./json-schema-subset.js";
import { optionalInteger, optionalNumber, type JsonObject } from "./validate.js";

/**
 * How the next token is chosen. Absent fields take the engine's defaults; `temperature: 0` is
 * greedy. The same shape travels from coordinator to worker, so both APIs share one reader.
 */
export interface SamplingParams {
  temperature?: number;
  top_k?: number;
  top_p?: number;
  min_p?: number;
  seed?: number;
  repeat_penalty?: number;
  presence_penalty?: number;
  frequency_penalty?: number;
  /** Token id (as a decimal string) → bias added to its logit; -100 bans it. */
  logit_bias?: Record<string, number>;
  /** Text that ends generation; never emitted. */
  stop?: string[];
  /** A GBNF grammar the output must follow. */
  grammar?: string;
  /** A JSON schema the output must follow (`{}` means any JSON object). */
  json_schema?: JsonObject;
  /**
   * Logprobs asked for: each token's, with this many likeliest alternatives (0..MAX_TOP_LOGPROBS).
   * The OpenAI front door sets it from chat's `logprobs`/`top_logprobs` or completions' `logprobs`.
   */
  top_logprobs?: number;
  /**
   * With `json_schema`: the answer may instead be text whose first non-blank character is not `{`
   * (tool_choice "auto": calls under their schemas, or text). Worker API only (the seed API's
   * reader ignores it); read by `readJsonSchemaOrText`.
   */
  json_schema_or_text?: boolean;
}

/** OpenAI's ceiling for chat's `top_logprobs`. */
export const MAX_TOP_LOGPROBS = 20;

export const MAX_STOP_SEQUENCES = 16;

/** Reads the sampling fields of a request object; unknown fields are left to the caller. */
export function readSampling(o: JsonObject): SamplingParams {
  const s: SamplingParams = {};
  const temperature = optionalNumber(o, "temperature", 0, 2);
  if (temperature !== undefined) s.temperature = temperature;
  const topK = optionalInteger(o, "top_k", -1, 1_000_000);
  if (topK !== undefined) s.top_k = topK;
  const topP = optionalNumber(o, "top_p", 0, 1);
  if (topP !== undefined) s.top_p = topP;
  const minP = optionalNumber(o, "min_p", 0, 1);
  if (minP !== undefined) s.min_p = minP;
  const seed = optionalInteger(o, "seed", -(2 ** 53) + 1, 2 ** 53 - 1);
  if (seed !== undefined) s.seed = seed;
  const rep = optionalNumber(o, "repeat_penalty", 0, 10);
  if (rep !== undefined) s.repeat_penalty = rep;
  const pres = optionalNumber(o, "presence_penalty", -2, 2);
  if (pres !== undefined) s.presence_penalty = pres;
  const freq = optionalNumber(o, "frequency_penalty", -2, 2);
  if (freq !== undefined) s.frequency_penalty = freq;
  const bias = readLogitBias(o.logit_bias);
  if (bias !== undefined) s.logit_bias = bias;
  const topLogprobs = optionalInteger(o, "top_logprobs", 0, MAX_TOP_LOGPROBS);
  if (topLogprobs !== undefined) s.top_logprobs = topLogprobs;
  const stop = readStop(o.stop);
  if (stop !== undefined) s.stop = stop;
  if (o.grammar !== undefined && o.grammar !== null) {
    if (typeof o.grammar !== "string" || o.grammar.length === 0 || o.grammar.length > 65536) {
      throw new ServingError("invalid_field", "'grammar' must be a non-empty GBNF string of at most 65536 characters", { param: "grammar" });
    }
    s.grammar = o.grammar;
  }
  if (o.json_schema !== undefined && o.json_schema !== null) {
    if (typeof o.json_schema !== "object" || Array.isArray(o.json_schema)) {
      throw new ServingError("invalid_field", "'json_schema' must be an object", { param: "json_schema" });
    }
    s.json_schema = enforceableSchema(o.json_schema as JsonObject, "json_schema");
  }
  return s;
}

/** The worker API's `json_schema_or_text` (only meaningful with `json_schema`). */
export function readJsonSchemaOrText(o: JsonObject, s: SamplingParams): void {
  const v = o.json_schema_or_text;
  if (v === undefined || v === null || v === false) return;
  if (v !== true) throw new ServingError("invalid_field", "'sampling.json_schema_or_text' must be a boolean", { param: "sampling.json_schema_or_text" });
  if (s.json_schema === undefined) throw new ServingError("invalid_field", "'sampling.json_schema_or_text' needs 'sampling.json_schema'", { param: "sampling.json_schema_or_text" });
  s.json_schema_or_text = true;
}

function readLogitBias(v: unknown): Record<string, number> | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v !== "object" || Array.isArray(v)) throw new ServingError("invalid_field", "'logit_bias' must be an object", { param: "logit_bias" });
  const out: Record<string, number> = {};
  const entries = Object.entries(v as Record<string, unknown>);
  if (entries.length > 1024) throw new ServingError("invalid_field", "'logit_bias' has more than 1024 entries", { param: "logit_bias" });
  for (const [k, b] of entries) {
    if (!/^\d{1,9}$/.test(k)) throw new ServingError("invalid_field", `'logit_bias' key '${k.slice(0, 32)}' is not a token id`, { param: "logit_bias" });
    if (typeof b !== "number" || !Number.isFinite(b) || b < -100 || b > 100) {
      throw new ServingError("invalid_field", "'logit_bias' values must be numbers from -100 to 100", { param: "logit_bias" });
    }
    out[k] = b;
  }
  return out;
}

function readStop(v: unknown): string[] | undefined {
  if (v === undefined || v === null) return undefined;
  const list = typeof v === "string" ? [v] : v;
  if (!Array.isArray(list) || list.length > MAX_STOP_SEQUENCES || !list.every((x) => typeof x === "string" && x.length > 0 && x.length <= 256)) {
    throw new ServingError("invalid_field", `'stop' must be a string or a list of at most ${MAX_STOP_SEQUENCES} non-empty strings`, { param: "stop" });
  }
  return list.length === 0 ? undefined : (list as string[]);
}
