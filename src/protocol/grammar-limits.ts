import { ServingError } from "./serving-error.js";

/**
 * Limits a GBNF grammar must keep before llama.cpp's parser sees it. The parser recurses once per
 * nesting level (a grammar ~32,000 parentheses deep overflows its stack: SIGSEGV, no exception to
 * catch), builds one rule per definition and per repetition, and expands `x{m,n}` into n copies of
 * x. This scan is linear in the text and needs no parse: it counts nesting depth (outside string
 * literals, character classes and comments), `::=` definitions, and the elements the grammar
 * expands to (each literal, class, rule reference or `.` is one; a group counts what it holds; a
 * repetition multiplies the element before it by its upper bound, or by 1 when unbounded).
 */
export const MAX_GRAMMAR_DEPTH = 64;
export const MAX_GRAMMAR_RULES = 4096;
export const MAX_GRAMMAR_ELEMENTS = 100_000;

export interface GrammarShape {
  depth: number;
  rules: number;
  elements: number;
}

/** Measures `gbnf`; stops early (and reports the limit crossed) once a limit is exceeded. */
export function grammarShape(gbnf: string): GrammarShape {
  let depth = 0;
  let maxDepth = 0;
  let rules = 0;
  // Element counts per open group; [0] is the current rule.
  const groups: number[] = [0];
  let last = 0; // elements of the element just closed, for a repetition after it
  let total = 0;
  const n = gbnf.length;
  for (let i = 0; i < n; i++) {
    const c = gbnf[i]!;
    if (c === "#") {
      while (i < n && gbnf[i] !== "\n") i++;
    } else if (c === '"' || c === "[") {
      const close = c === '"' ? '"' : "]";
      for (i++; i < n && gbnf[i] !== close; i++) if (gbnf[i] === "\\") i++;
      last = 1;
      groups[groups.length - 1]! += 1;
    } else if (c === "(") {
      depth++;
      if (depth > maxDepth) maxDepth = depth;
      if (maxDepth > MAX_GRAMMAR_DEPTH) break;
      groups.push(0);
    } else if (c === ")") {
      if (depth > 0) depth--;
      last = groups.length > 1 ? groups.pop()! : 0;
      groups[groups.length - 1]! += last;
    } else if (c === "{") {
      const m = /^\{\s*(\d*)\s*(,?)\s*(\d*)\s*\}/.exec(gbnf.slice(i, i + 32));
      if (m !== null) {
        const bound = m[3] !== "" ? Number(m[3]) : m[2] === "" && m[1] !== "" ? Number(m[1]) : 1;
        groups[groups.length - 1]! += last * Math.max(0, bound - 1);
        last *= Math.max(1, bound);
        i += m[0].length - 1;
      }
    } else if (c === ":" && gbnf.startsWith("::=", i)) {
      rules++;
      if (rules > MAX_GRAMMAR_RULES) break;
      i += 2;
    } else if (/[A-Za-z0-9_.-]/.test(c)) {
      // A rule name (or `.`): one element; skip the rest of the name.
      while (i + 1 < n && /[A-Za-z0-9_-]/.test(gbnf[i + 1]!) && c !== ".") i++;
      last = 1;
      groups[groups.length - 1]! += 1;
    } else if (c === "\n" && depth === 0) {
      total += groups[0]!;
      groups[0] = 0;
    }
    if (total + groups.reduce((a, b) => a + b, 0) > MAX_GRAMMAR_ELEMENTS) break;
  }
  total += groups.reduce((a, b) => a + b, 0);
  return { depth: maxDepth, rules, elements: total };
}

/** Throws 400 `invalid_grammar` when `gbnf` is past a limit; `param` names the request field. */
export function checkGrammarLimits(gbnf: string, param: string): void {
  const s = grammarShape(gbnf);
  let problem: string | undefined;
  if (s.depth > MAX_GRAMMAR_DEPTH) problem = `nests deeper than ${MAX_GRAMMAR_DEPTH} levels`;
  else if (s.rules > MAX_GRAMMAR_RULES) problem = `defines more than ${MAX_GRAMMAR_RULES} rules`;
  else if (s.elements > MAX_GRAMMAR_ELEMENTS) problem = `expands to more than ${MAX_GRAMMAR_ELEMENTS} elements`;
  if (problem !== undefined) throw new ServingError("invalid_grammar", `'${param}' ${problem}`, { param, details: { ...s } });
}
