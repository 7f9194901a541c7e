import type { PartialCall, ToolCall } from "./tool-call-output.js";
import { gbnfLiteral, renameRules } from "./tool-call-grammar.js";

/**
 * Tool calls in a model's own syntax (read from its chat template on the worker:
 * src/engine/tool-call-syntax.ts), e.g. Hermes / Qwen 2.5:
 * `<tool_call>\n{"name": "get_weather", "arguments": {"city": "Oslo"}}\n</tool_call>`, as
 * prefix, name, paramsPrefix, arguments object, suffix; calls after the first joined by `between`.
 * The grammar and the parser of such answers, both pure: the worker has the syntax and each tool's
 * arguments grammar (compiled from its `parameters`), the parser needs only the syntax.
 */
export interface NativeCallSyntax {
  prefix: string;
  paramsPrefix: string;
  suffix: string;
  /** Undefined: one call per answer. */
  between: string | undefined;
}

/** node-llama-cpp 3.21.1's JSON schema grammars end the root with newlines (for a document); inside a call they go. */
const DOCUMENT_END = ' "\\n\\n\\n\\n" [\\n]*';

/**
 * GBNF: text whose first non-blank character is not the prefix's first (under `auto`), or calls.
 * `argsGbnf[i]` is tool i's arguments grammar (root `root`); its rules are renamed `t<i>-<rule>`.
 */
export function nativeCallsGrammar(
  syntax: NativeCallSyntax, tools: readonly { name: string; argsGbnf: string }[], opts: { text: boolean; parallel: boolean },
): string {
  const first = syntax.prefix.trimStart()[0]!;
  const lines = [`root ::= ${opts.text ? "text-answer | " : ""}calls`];
  if (opts.text) lines.push(`text-answer ::= [ \\t\\n\\r]* [^${classChar(first)} \\t\\n\\r] [^\\x00]*`);
  const between = opts.parallel && syntax.between !== undefined ? syntax.between : undefined;
  lines.push(`calls ::= call${between !== undefined ? ` (${gbnfLiteral(between)} call)*` : ""}`);
  lines.push(`call ::= ${tools.map((_, i) => `call-${i}`).join(" | ")}`);
  tools.forEach((t, i) => {
    lines.push(`call-${i} ::= ${gbnfLiteral(syntax.prefix)} ${gbnfLiteral(t.name)} ${gbnfLiteral(syntax.paramsPrefix)} t${i}-root ${gbnfLiteral(syntax.suffix)}`);
    const args = t.argsGbnf.split("\n").map((l) => (l.startsWith("root ::= ") && l.endsWith(DOCUMENT_END) ? l.slice(0, -DOCUMENT_END.length) : l)).join("\n");
    lines.push(renameRules(args, (name) => `t${i}-${name}`).trimEnd());
  });
  lines.push("");
  return lines.join("\n");
}

/**
 * The answer → OpenAI tool calls when it is, after leading blanks, calls in `syntax` naming offered
 * tools with JSON-object arguments (and nothing but blanks after); else undefined (text).
 */
export function parseNativeToolCalls(text: string, syntax: NativeCallSyntax, names: ReadonlySet<string>, newId: () => string): ToolCall[] | undefined {
  let i = skipBlanks(text, 0);
  const out: ToolCall[] = [];
  for (;;) {
    if (!text.startsWith(syntax.prefix.trimStart(), i)) return undefined;
    i += syntax.prefix.trimStart().length;
    const nameEnd = text.indexOf(syntax.paramsPrefix, i);
    if (nameEnd < 0) return undefined;
    const name = text.slice(i, nameEnd);
    if (!names.has(name)) return undefined;
    i = nameEnd + syntax.paramsPrefix.length;
    const argsStart = skipBlanks(text, i);
    const argsEnd = objectEnd(text, argsStart);
    if (argsEnd < 0) return undefined;
    const args = text.slice(argsStart, argsEnd);
    try {
      JSON.parse(args);
    } catch {
      return undefined;
    }
    out.push({ id: `call_${newId()}`, type: "function", function: { name, arguments: args } });
    if (!text.startsWith(syntax.suffix, argsEnd)) return undefined;
    i = argsEnd + syntax.suffix.length;
    if (syntax.between !== undefined && text.startsWith(syntax.between + syntax.prefix.trimStart(), i)) {
      i += syntax.between.length;
      continue;
    }
    return skipBlanks(text, i) === text.length ? out : undefined;
  }
}

function skipBlanks(text: string, i: number): number {
  while (i < text.length && " \t\n\r".includes(text[i]!)) i++;
  return i;
}

/** Index just past the JSON object starting at `i`; -1 when there is none or it is unfinished. */
function objectEnd(text: string, i: number): number {
  if (text[i] !== "{") return -1;
  let depth = 0;
  let inString = false;
  for (let j = i; j < text.length; j++) {
    const c = text[j];
    if (inString) {
      if (c === "\\") j++;
      else if (c === '"') inString = false;
    } else if (c === '"') inString = true;
    else if (c === "{" || c === "[") depth++;
    else if ((c === "}" || c === "]") && --depth === 0) return j + 1;
  }
  return -1;
}

/** A character inside a GBNF character class. */
function classChar(c: string): string {
  return /[\]\[\\^-]/.test(c) ? `\\${c}` : c === "\n" ? "\\n" : c;
}

/**
 * A (possibly unfinished) answer in `syntax`, scanned for each call's name (once its text is
 * followed by `paramsPrefix`) and the text of its arguments so far: always a prefix of the final
 * arguments' text (the grammar writes compact JSON right after `paramsPrefix`), so a stream can
 * send what is new each time (tool-call-stream.ts).
 */
export function scanNativeCalls(text: string, syntax: NativeCallSyntax): PartialCall[] {
  const out: PartialCall[] = [];
  const prefix = syntax.prefix.trimStart();
  let i = skipBlanks(text, 0);
  for (;;) {
    if (!text.startsWith(prefix, i)) return out;
    i += prefix.length;
    const nameEnd = text.indexOf(syntax.paramsPrefix, i);
    if (nameEnd < 0) {
      out.push({ name: undefined, args: "", done: false });
      return out;
    }
    const name = text.slice(i, nameEnd);
    i = skipBlanks(text, nameEnd + syntax.paramsPrefix.length);
    const end = objectEnd(text, i);
    if (end < 0) {
      out.push({ name, args: text.slice(i), done: false });
      return out;
    }
    out.push({ name, args: text.slice(i, end), done: true });
    i = end;
    if (!text.startsWith(syntax.suffix, i)) return out;
    i += syntax.suffix.length;
    if (syntax.between === undefined || !text.startsWith(syntax.between, i)) return out;
    i += syntax.between.length;
  }
}
