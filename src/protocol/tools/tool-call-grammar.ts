import type { ToolRequest } from "./tool-request.js";

/**
 * The GBNF grammar for `tool_choice: "auto"` in the generic format: the answer is either text that
 * does not start with `{`, or (starting with `{`) one tool-call object
 * `{"tool_calls":[{"name":"<tool>","arguments":{…}}]}` naming an offered tool. Names are enforced;
 * the arguments are any JSON object (their schemas are enforced under `required` or a named
 * choice, where the whole answer is calls: tool-call-schema.ts). Numbers are finite (at most 16
 * digits, an exponent of at most two), whitespace inside the call is at most one space.
 */
export function autoToolGrammar(req: ToolRequest): string {
  const names = req.tools.map((t) => gbnfLiteral(JSON.stringify(t.name))).join(" | ");
  const calls = req.parallel ? `call ("," ws call)*` : "call";
  return [
    `root ::= text | calls`,
    `text ::= [^{] [^\\x00]*`,
    `calls ::= "{\\"tool_calls\\":" ws "[" ws ${calls} ws "]" ws "}"`,
    `call ::= "{" ws "\\"name\\":" ws name ws "," ws "\\"arguments\\":" ws object ws "}"`,
    `name ::= ${names}`,
    `value ::= object | array | string | number | "true" | "false" | "null"`,
    `object ::= "{" ws ( member ( ws "," ws member )* )? ws "}"`,
    `member ::= string ws ":" ws value`,
    `array ::= "[" ws ( value ( ws "," ws value )* )? ws "]"`,
    `string ::= "\\"" ( [^"\\\\\\x00-\\x1f] | "\\\\" ( ["\\\\/bfnrt] | "u" [0-9a-fA-F]{4} ) )* "\\""`,
    `number ::= "-"? ( "0" | [1-9] [0-9]{0,15} ) ( "." [0-9]{1,16} )? ( [eE] [-+]? [0-9]{1,2} )?`,
    `ws ::= " "?`,
    "",
  ].join("\n");
}

/** A GBNF string literal for `text`. */
export function gbnfLiteral(text: string): string {
  return `"${text.replace(/[\\"]/g, (c) => `\\${c}`).replace(/\n/g, "\\n")}"`;
}
