import { ServingError } from "./serving-error.js";
import { readChatMessages, type ChatMessage } from "./chat.js";
import { enforceableSchema } from "./json-schema-subset.js";
import { readSampling, type SamplingParams } from "./sampling.js";
import { optionalBoolean, optionalInteger, optionalString, requireString, type JsonObject } from "./validate.js";
import { MAX_PROMPT_CHARS } from "./limits.js";
import { MAX_PRIORITY } from "./limits.js";
import { readToolRequest, type ToolRequest } from "./tools/tool-request.js";
import { lowerToolMessages } from "./tools/tool-messages.js";
import { toolCallSchema } from "./tools/tool-call-schema.js";
import { workerToolsOf, type WorkerTools } from "./tools/worker-tools.js";

/**
 * OpenAI's `POST /v1/completions` and `POST /v1/chat/completions` requests, read into one shape
 * the coordinator's pipeline takes. Every refusal names the parameter (OpenAI's `param`). Fields we
 * cannot honour are refused rather than ignored (echo); unknown fields are
 * ignored, as OpenAI's own API does for forward compatibility.
 */
export type OpenAiKind = "completion" | "chat";

export interface OpenAiRequest {
  kind: OpenAiKind;
  model: string;
  /** Completions: the prompt text. */
  prompt: string | undefined;
  /** Chat: the conversation. */
  messages: ChatMessage[] | undefined;
  /** Undefined for chat without a limit: the rest of the model's context. */
  maxTokens: number | undefined;
  /** The parameter the limit came from, for errors about it. */
  maxTokensParam: "max_tokens" | "max_completion_tokens";
  sampling: SamplingParams;
  stream: boolean;
  /** `stream_options.include_usage`: a last chunk with `usage` and no choices. */
  includeUsage: boolean;
  user: string | undefined;
  /** Chat with tools offered and `tool_choice` other than "none": the answer may be tool calls. */
  tools?: ToolRequest;
  /** The same tools with the structured history, for the worker (which may use the model's own format). */
  workerTools?: WorkerTools;
  /** Added (as vLLM's): order in the admission queue, lower first. */
  priority?: number;
  /** Choices of the one prompt (OpenAI's `n`), 1..the coordinator's MAX_CHOICES. */
  n: number;
}

/** OpenAI's ceiling for the completions API's `logprobs`. */
export const MAX_COMPLETION_LOGPROBS = 5;
/** OpenAI's default for `/v1/completions` when `max_tokens` is absent. */
export const COMPLETION_DEFAULT_MAX_TOKENS = 16;
/** OpenAI's default temperature (the seed API defaults to greedy instead). */
export const OPENAI_DEFAULT_TEMPERATURE = 1;

/** The coordinator's default MAX_CHOICES. */
export const DEFAULT_MAX_CHOICES = 8;

export function parseCompletionRequest(o: JsonObject, maxTokensLimit: number, maxChoices = DEFAULT_MAX_CHOICES): OpenAiRequest {
  const common = readCommon(o, maxTokensLimit, "completion", maxChoices);
  for (const key of ["suffix"] as const) {
    if (o[key] !== undefined && o[key] !== null && o[key] !== "") unsupported(key);
  }
  if (o.echo === true) unsupported("echo");
  // OpenAI's legacy `logprobs`: the count of alternatives (0..5) besides each chosen token's own.
  delete common.sampling.top_logprobs;
  const logprobs = optionalInteger(o, "logprobs", 0, MAX_COMPLETION_LOGPROBS);
  if (logprobs !== undefined) common.sampling.top_logprobs = logprobs;
  const bestOf = optionalInteger(o, "best_of", 1, 1_000);
  if (bestOf !== undefined && bestOf !== 1) throw new ServingError("invalid_field", "only 'best_of': 1 is supported", { param: "best_of" });
  return { ...common, prompt: readPrompt(o.prompt), messages: undefined };
}

export function parseChatRequest(o: JsonObject, maxTokensLimit: number, maxChoices = DEFAULT_MAX_CHOICES): OpenAiRequest {
  const common = readCommon(o, maxTokensLimit, "chat", maxChoices);
  const logprobs = optionalBoolean(o, "logprobs") ?? false;
  // readSampling read `top_logprobs` (0..20); OpenAI accepts it only together with `logprobs: true`.
  if (!logprobs && common.sampling.top_logprobs !== undefined) {
    throw new ServingError("invalid_request", "'top_logprobs' requires 'logprobs': true", { param: "top_logprobs" });
  }
  if (logprobs) common.sampling.top_logprobs ??= 0;
  const tools = readToolRequest(o);
  if (o.audio !== undefined && o.audio !== null) unsupported("audio");
  if (Array.isArray(o.modalities) && o.modalities.some((m) => m !== "text")) unsupported("modalities");
  const messages = readChatMessages(lowerToolMessages(o.messages, tools));
  if (tools === undefined || tools.choice === "none") return { ...common, prompt: undefined, messages };
  const s = common.sampling;
  if (s.grammar !== undefined || s.json_schema !== undefined) {
    throw new ServingError("invalid_request", "'tools' cannot be combined with 'response_format', 'grammar' or 'json_schema' (unless 'tool_choice' is \"none\")", { param: "tools" });
  }
  // Calls under a grammar from their schemas (names and arguments enforced); `auto` also allows
  // text instead (tool-call-grammar.ts), built by the worker, where the schema converter lives.
  s.json_schema = toolCallSchema(tools);
  if (tools.choice === "auto") s.json_schema_or_text = true;
  const workerTools = workerToolsOf(tools, o.messages);
  return { ...common, prompt: undefined, messages, tools, ...(workerTools !== undefined ? { workerTools } : {}) };
}

function readCommon(o: JsonObject, maxTokensLimit: number, kind: OpenAiKind, maxChoices: number): Omit<OpenAiRequest, "prompt" | "messages"> {
  const model = requireString(o, "model", { nonEmpty: true, maxLength: 256 });
  const n = optionalInteger(o, "n", 1, maxChoices) ?? 1;
  const stream = optionalBoolean(o, "stream") ?? false;
  const includeUsage = readStreamOptions(o.stream_options);
  const maxCompletion = kind === "chat" ? optionalInteger(o, "max_completion_tokens", 1, maxTokensLimit) : undefined;
  const maxTokensField = optionalInteger(o, "max_tokens", 1, maxTokensLimit);
  const maxTokens = maxCompletion ?? maxTokensField ?? (kind === "completion" ? COMPLETION_DEFAULT_MAX_TOKENS : undefined);
  const sampling = readSampling(o);
  if (sampling.temperature === undefined) sampling.temperature = OPENAI_DEFAULT_TEMPERATURE;
  readResponseFormat(o.response_format, sampling);
  const user = optionalString(o, "user", { maxLength: 256 });
  const priority = optionalInteger(o, "priority", -MAX_PRIORITY, MAX_PRIORITY);
  return {
    kind, model, maxTokens, maxTokensParam: maxCompletion !== undefined ? "max_completion_tokens" : "max_tokens",
    sampling, stream, includeUsage: stream && includeUsage, user, ...(priority !== undefined ? { priority } : {}), n,
  };
}

function readPrompt(v: unknown): string {
  if (v === undefined || v === null) throw new ServingError("missing_field", "missing required field 'prompt'", { param: "prompt" });
  // A list holding one string is the same request; token-id prompts and batches are not served.
  const text = Array.isArray(v) && v.length === 1 ? v[0] : v;
  if (typeof text !== "string") {
    throw new ServingError("invalid_field", "'prompt' must be a string (or a list of one string)", { param: "prompt" });
  }
  if (text.length === 0) throw new ServingError("invalid_field", "'prompt' must not be empty", { param: "prompt" });
  if (text.length > MAX_PROMPT_CHARS) throw new ServingError("invalid_field", `'prompt' is longer than ${MAX_PROMPT_CHARS} characters`, { param: "prompt" });
  return text;
}

function readStreamOptions(v: unknown): boolean {
  if (v === undefined || v === null) return false;
  if (typeof v !== "object" || Array.isArray(v)) throw new ServingError("invalid_field", "'stream_options' must be an object", { param: "stream_options" });
  const usage = (v as JsonObject).include_usage;
  if (usage === undefined || usage === null) return false;
  if (typeof usage !== "boolean") {
    throw new ServingError("invalid_field", "'stream_options.include_usage' must be a boolean", { param: "stream_options.include_usage" });
  }
  return usage;
}

/** `response_format`: text, json_object (any JSON object) or json_schema, enforced by a grammar. */
function readResponseFormat(v: unknown, sampling: SamplingParams): void {
  if (v === undefined || v === null) return;
  const param = "response_format";
  if (typeof v !== "object" || Array.isArray(v)) throw new ServingError("invalid_field", `'${param}' must be an object`, { param });
  const f = v as JsonObject;
  if (f.type === "text") return;
  if (sampling.grammar !== undefined || sampling.json_schema !== undefined) {
    throw new ServingError("invalid_request", `'${param}' cannot be combined with 'grammar' or 'json_schema'`, { param });
  }
  if (f.type === "json_object") {
    sampling.json_schema = {};
    return;
  }
  if (f.type === "json_schema") {
    const js = f.json_schema;
    if (typeof js !== "object" || js === null || Array.isArray(js)) {
      throw new ServingError("invalid_field", `'${param}.json_schema' must be an object {name, schema}`, { param: `${param}.json_schema` });
    }
    const schema = (js as JsonObject).schema;
    if (schema === undefined || schema === null) {
      sampling.json_schema = {};
      return;
    }
    if (typeof schema !== "object" || Array.isArray(schema)) {
      throw new ServingError("invalid_field", `'${param}.json_schema.schema' must be a JSON schema object`, { param: `${param}.json_schema.schema` });
    }
    sampling.json_schema = enforceableSchema(schema as JsonObject, `${param}.json_schema.schema`);
    return;
  }
  throw new ServingError("invalid_field", `'${param}.type' must be one of text, json_object, json_schema`, { param: `${param}.type` });
}

function unsupported(param: string): never {
  throw new ServingError("invalid_field", `'${param}' is not supported by this server`, { param });
}
