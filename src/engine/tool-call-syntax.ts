import { LlamaText, SpecialToken, SpecialTokensText, type ChatWrapper } from "node-llama-cpp";

/**
 * The text a model's chat template writes around one tool call, as node-llama-cpp 3.21.1 reads it
 * from the template (its Jinja wrapper renders the template with sample calls and finds the text
 * around them; its built-in wrappers carry their own): e.g. for Hermes / Qwen 2.5 templates
 * prefix `<tool_call>\n{"name": "`, the tool's name, paramsPrefix `", "arguments": `, the arguments
 * object, suffix `}\n</tool_call>`; calls after the first are joined by `between`.
 *
 * Undefined when the template defines no tool-call syntax: node-llama-cpp then falls back to its
 * own `||call: name(…)` convention, which is not the model's and not used here (the generic format
 * stays), and likewise when a piece holds a token that is not text (BOS, EOS).
 */
export interface ToolCallSyntax {
  prefix: string;
  paramsPrefix: string;
  suffix: string;
  /** Between two calls; undefined: the template has no parallel calls. */
  between: string | undefined;
}

/** node-llama-cpp's own syntax for templates without one (JinjaTemplateChatWrapper's fallback). */
const FALLBACK_PREFIX = "||call:";

export function toolCallSyntaxOf(wrapper: ChatWrapper): ToolCallSyntax | undefined {
  const call = wrapper.settings.functions.call;
  const prefix = textOf(call.prefix);
  const paramsPrefix = textOf(call.paramsPrefix);
  const suffix = textOf(call.suffix);
  if (prefix === undefined || paramsPrefix === undefined || suffix === undefined) return undefined;
  if (prefix.trim() === "" || prefix.trim().startsWith(FALLBACK_PREFIX)) return undefined;
  const parallel = wrapper.settings.functions.parallelism?.call;
  const between = parallel?.betweenCalls === undefined ? undefined : textOf(parallel.betweenCalls);
  return { prefix, paramsPrefix, suffix, between };
}

/** A piece as plain text (special-token text included, as the model writes it); undefined if it holds another token. */
function textOf(piece: string | LlamaText): string | undefined {
  if (typeof piece === "string") return piece;
  let out = "";
  for (const v of LlamaText(piece).values) {
    if (typeof v === "string") out += v;
    else if (v instanceof SpecialTokensText) out += v.value;
    else if (v instanceof SpecialToken && v.value === "NL") out += "\n";
    else return undefined;
  }
  return out;
}
