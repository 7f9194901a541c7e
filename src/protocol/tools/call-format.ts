import { parseNativeToolCalls, scanNativeCalls, type NativeCallSyntax } from "./native-tool-calls.js";
import { parseToolCalls, scanCalls, type PartialCall, type ToolCall } from "./tool-call-output.js";

/**
 * How the coordinator reads an answer's tool calls: the generic format (`{"tool_calls":[…]}`,
 * tool-call-output.ts) or the model's own syntax, which the worker names in its prefill answer
 * (`tool_syntax`, native-tool-calls.ts). `start`: the first non-blank character of any answer
 * with calls (under `auto`, an answer starting otherwise is text).
 */
export interface CallFormat {
  start: string;
  scan(text: string): PartialCall[];
  parse(text: string, names: ReadonlySet<string>, newId: () => string): ToolCall[] | undefined;
}

export const GENERIC_CALLS: CallFormat = { start: "{", scan: scanCalls, parse: parseToolCalls };

export function callFormatOf(syntax: NativeCallSyntax | undefined): CallFormat {
  if (syntax === undefined) return GENERIC_CALLS;
  return {
    start: syntax.prefix.trimStart()[0]!,
    scan: (text) => scanNativeCalls(text, syntax),
    parse: (text, names, newId) => parseNativeToolCalls(text, syntax, names, newId),
  };
}
