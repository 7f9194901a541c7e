/**
 * The model's answer → OpenAI tool calls. An answer in the generic format (after leading
 * whitespace, a JSON object `{"tool_calls":[{"name","arguments"}…]}` whose names are offered tools)
 * is calls; anything else (text, or calls cut short by max_tokens) is text. Ids are `call_` and 24
 * characters from the caller's generator (the protocol stays free of randomness).
 */
export interface ToolCall {
  id: string;
  type: "function";
  function: { name: string; arguments: string };
}

export function parseToolCalls(text: string, names: ReadonlySet<string>, newId: () => string): ToolCall[] | undefined {
  const trimmed = text.trim();
  if (!trimmed.startsWith("{")) return undefined;
  let value: unknown;
  try {
    value = JSON.parse(trimmed);
  } catch {
    return undefined;
  }
  const calls = (value as { tool_calls?: unknown })?.tool_calls;
  if (!Array.isArray(calls) || calls.length === 0) return undefined;
  const out: ToolCall[] = [];
  for (const c of calls) {
    const call = c as { name?: unknown; arguments?: unknown };
    if (typeof call !== "object" || call === null || typeof call.name !== "string" || !names.has(call.name)) return undefined;
    const args = call.arguments ?? {};
    if (typeof args !== "object" || args === null || Array.isArray(args)) return undefined;
    out.push({ id: `call_${newId()}`, type: "function", function: { name: call.name, arguments: JSON.stringify(args) } });
  }
  return out;
}

/** Fragment size (characters) of streamed arguments: clients must concatenate, as with OpenAI. */
export const ARGUMENT_FRAGMENT_CHARS = 24;

/** OpenAI's streamed `delta.tool_calls` for whole calls: id, type and name first, then arguments in fragments. */
export function toolCallDeltas(calls: readonly ToolCall[]): object[] {
  const out: object[] = [];
  calls.forEach((c, index) => {
    out.push({ index, id: c.id, type: "function", function: { name: c.function.name, arguments: "" } });
    for (let i = 0; i < c.function.arguments.length; i += ARGUMENT_FRAGMENT_CHARS) {
      out.push({ index, function: { arguments: c.function.arguments.slice(i, i + ARGUMENT_FRAGMENT_CHARS) } });
    }
  });
  return out;
}
