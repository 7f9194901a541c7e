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
  const raw = scanCalls(trimmed);
  if (raw.length !== calls.length) return undefined;
  const out: ToolCall[] = [];
  for (const [i, c] of calls.entries()) {
    const call = c as { name?: unknown; arguments?: unknown };
    if (typeof call !== "object" || call === null || typeof call.name !== "string" || !names.has(call.name)) return undefined;
    const args = call.arguments ?? {};
    if (typeof args !== "object" || args === null || Array.isArray(args)) return undefined;
    out.push({ id: `call_${newId()}`, type: "function", function: { name: call.name, arguments: raw[i]!.args === "" ? "{}" : raw[i]!.args } });
  }
  return out;
}

/** What a (possibly unfinished) answer holds so far for one call. */
export interface PartialCall {
  /** Set once the name's string has closed. */
  name: string | undefined;
  /** The arguments object's text so far ("" before it starts); `done` once it has closed. */
  args: string;
  done: boolean;
}

/**
 * Scans `{"tool_calls":[{"name":…,"arguments":{…}},…]}`, finished or not, for each call's name
 * and the source text of its arguments: a prefix of the final text, so a stream can send what is
 * new each time. Values are skipped by their grammar; only the root, the list and the calls are read.
 */
export function scanCalls(text: string): PartialCall[] {
  const n = text.length;
  const ws = (i: number): number => {
    while (i < n && " \t\n\r".includes(text[i]!)) i++;
    return i;
  };
  /** Index just past the value at `i`; n + 1 while it is unfinished (a number may yet grow). */
  const skipValue = (i: number): number => {
    const c = text[i];
    if (c === '"') {
      for (let j = i + 1; j < n; j++) {
        if (text[j] === "\\") j++;
        else if (text[j] === '"') return j + 1;
      }
      return n + 1;
    }
    if (c === "{" || c === "[") {
      let depth = 0;
      for (let j = i; j < n; j++) {
        const d = text[j];
        if (d === '"') {
          j = skipValue(j) - 1;
          continue;
        }
        if (d === "{" || d === "[") depth++;
        else if ((d === "}" || d === "]") && --depth === 0) return j + 1;
      }
      return n + 1;
    }
    let j = i;
    while (j < n && !",}] \t\n\r".includes(text[j]!)) j++;
    return j < n ? j : n + 1;
  };
  /** Calls `each(key, valueStart)` for the members of the object at `start`; returns past its end. */
  const members = (start: number, each: (key: string, from: number) => void): number => {
    let i = ws(start + 1);
    while (i < n && text[i] !== "}") {
      const keyEnd = skipValue(i);
      if (keyEnd > n) return n;
      const key = JSON.parse(text.slice(i, keyEnd)) as string;
      i = ws(keyEnd);
      if (text[i] !== ":") return n;
      const from = ws(i + 1);
      if (from >= n) return n;
      each(key, from);
      i = ws(Math.min(n, skipValue(from)));
      if (text[i] === ",") i = ws(i + 1);
    }
    return Math.min(n, i + 1);
  };
  const calls: PartialCall[] = [];
  const root = ws(0);
  if (text[root] !== "{") return calls;
  members(root, (key, from) => {
    if (key !== "tool_calls" || text[from] !== "[") return;
    let i = ws(from + 1);
    while (i < n && text[i] === "{") {
      const call: PartialCall = { name: undefined, args: "", done: false };
      calls.push(call);
      i = ws(members(i, (k, at) => {
        const end = skipValue(at);
        if (k === "name" && text[at] === '"' && end <= n) call.name = JSON.parse(text.slice(at, end)) as string;
        else if (k === "arguments") {
          call.args = text.slice(at, Math.min(end, n));
          call.done = end <= n;
        }
      }));
      if (text[i] === ",") i = ws(i + 1);
    }
  });
  return calls;
}
