/**
 * The grammar for `tool_choice: "auto"`: the answer is either text whose first non-blank character
 * is not `{`, or (starting with `{`) tool calls under the grammar compiled from the call schema
 * (tool-call-schema.ts: each offered tool's name with that tool's `parameters` as its arguments'
 * schema, so arguments validate as under `required`). The worker builds it (the schema converter
 * lives there) for requests whose sampling has `json_schema` and `json_schema_or_text`:
 * `textOrJsonGrammar(<the schema's GBNF>)`.
 *
 * The schema's GBNF (node-llama-cpp's converter) starts at `root`; that rule is renamed to
 * `json-answer` (a reference to `root` inside it too: recursive schemas refer to the root), outside
 * string literals and character classes, and a new `root` offers the two alternatives. The
 * converter's own rule names (`rule<n>`, `val<n>`, `def<n>`, `…-rule`) never collide with these.
 */
export const TEXT_ANSWER_RULE = "text-answer ::= [ \\t\\n\\r]* [^{ \\t\\n\\r] [^\\x00]*";

export function textOrJsonGrammar(jsonGbnf: string): string {
  return [`root ::= text-answer | json-answer`, TEXT_ANSWER_RULE, renameRule(jsonGbnf, "root", "json-answer"), ""].join("\n");
}

/** `gbnf` with every reference to (and the definition of) rule `from` named `to`. */
export function renameRule(gbnf: string, from: string, to: string): string {
  return renameRules(gbnf, (name) => (name === from ? to : name));
}

/** `gbnf` with every rule name (definitions and references, not text in literals or classes) mapped by `rename`. */
export function renameRules(gbnf: string, rename: (name: string) => string): string {
  let out = "";
  let i = 0;
  const n = gbnf.length;
  const isName = (c: string | undefined): boolean => c !== undefined && /[A-Za-z0-9_-]/.test(c);
  while (i < n) {
    const c = gbnf[i]!;
    if (c === '"' || c === "[") {
      // A literal or a character class, copied as is (backslash escapes included).
      const close = c === '"' ? '"' : "]";
      let j = i + 1;
      while (j < n && gbnf[j] !== close) j += gbnf[j] === "\\" ? 2 : 1;
      out += gbnf.slice(i, j + 1);
      i = j + 1;
    } else if (c === "#") {
      const j = gbnf.indexOf("\n", i);
      const end = j < 0 ? n : j;
      out += gbnf.slice(i, end);
      i = end;
    } else if (isName(c)) {
      let j = i;
      while (j < n && isName(gbnf[j])) j++;
      const name = gbnf.slice(i, j);
      // Digits alone are a repetition count ({0,15}), not a rule.
      out += /^[0-9]+$/.test(name) ? name : rename(name);
      i = j;
    } else {
      out += c;
      i++;
    }
  }
  return out;
}

/** A GBNF string literal for `text`. */
export function gbnfLiteral(text: string): string {
  return `"${text.replace(/[\\"]/g, (c) => `\\${c}`).replace(/\n/g, "\\n").replace(/\r/g, "\\r").replace(/\t/g, "\\t")}"`;
}
