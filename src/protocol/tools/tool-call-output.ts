/**
 * The model's answer → OpenAI tool calls. An answer in the generic format (after leading
 * whitespace, a JSON object `{"tool_calls":[{"name","arguments"}…]}` whose names are offered tools)
 * is calls; anything else (text, or calls cut short by max_tokens) is text. Ids are `call_` and 24
 * characters from the caller's generator (the protocol stays free of randomness). A call's
 * `arguments` string is the model's own text of that object, not a re-serialization: JSON.parse
 * would round `12345678901234567890` and rewrite `1.50`, and the schema was enforced on the text.
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
  const raw = rawArguments(trimmed);
  if (raw === undefined || raw.length !== calls.length) return undefined;
  const out: ToolCall[] = [];
  for (const [i, c] of calls.entries()) {
    const call = c as { name?: unknown; arguments?: unknown };
    if (typeof call !== "object" || call === null || typeof call.name !== "string" || !names.has(call.name)) return undefined;
    const args = call.arguments ?? {};
    if (typeof args !== "object" || args === null || Array.isArray(args)) return undefined;
    out.push({ id: `call_${newId()}`, type: "function", function: { name: call.name, arguments: raw[i] ?? "{}" } });
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

/**
 * The source text of each `tool_calls[i].arguments` in an answer already known to be valid JSON
 * (undefined for a call without arguments); undefined if the shape is not `{"tool_calls":[{…}]}`.
 * A small scanner over spans: values are skipped by their grammar, only the two levels read.
 */
function rawArguments(text: string): (string | undefined)[] | undefined {
  const members = (start: number): { key: string; from: number; to: number }[] | undefined => {
    if (text[start] !== "{") return undefined;
    const out: { key: string; from: number; to: number }[] = [];
    let i = ws(start + 1);
    if (text[i] === "}") return out;
    for (;;) {
      const keyEnd = skipValue(i);
      const key = JSON.parse(text.slice(i, keyEnd)) as string;
      const from = ws(ws(keyEnd) + 1);
      const to = skipValue(from);
      out.push({ key, from, to });
      i = ws(to);
      if (text[i] === "}") return out;
      i = ws(i + 1);
    }
  };
  const ws = (i: number): number => {
    while (i < text.length && " \t\n\r".includes(text[i]!)) i++;
    return i;
  };
  const skipValue = (i: number): number => {
    const c = text[i];
    if (c === '"') {
      for (let j = i + 1; j < text.length; j++) {
        if (text[j] === "\\") j++;
        else if (text[j] === '"') return j + 1;
      }
      return text.length;
    }
    if (c === "{" || c === "[") {
      let depth = 0;
      for (let j = i; j < text.length; j++) {
        const d = text[j];
        if (d === '"') j = skipValue(j) - 1;
        else if (d === "{" || d === "[") depth++;
        else if ((d === "}" || d === "]") && --depth === 0) return j + 1;
      }
      return text.length;
    }
    let j = i;
    while (j < text.length && !",}] \t\n\r".includes(text[j]!)) j++;
    return j;
  };
  const calls = members(0)?.find((m) => m.key === "tool_calls");
  if (calls === undefined || text[calls.from] !== "[") return undefined;
  const out: (string | undefined)[] = [];
  let i = ws(calls.from + 1);
  while (text[i] === "{") {
    const m = members(i);
    const args = m?.find((x) => x.key === "arguments");
    out.push(args === undefined ? undefined : text.slice(args.from, args.to));
    i = ws(skipValue(i));
    if (text[i] === ",") i = ws(i + 1);
  }
  return out;
}
