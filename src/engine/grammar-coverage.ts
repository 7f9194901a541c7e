import { ServingError } from "../protocol/serving-error.js";
import type { VocabularyCoverage } from "./vocabulary-coverage.js";

/**
 * Whether a model could ever produce what a GBNF grammar demands. llama.cpp's grammar sampler
 * rejects every token when the grammar's next character is one no token yields: a character the
 * vocabulary lacks (no byte tokens), or NUL (a token whose text starts with NUL never matches).
 * node-llama-cpp then samples a forbidden token anyway and its grammar throws where nothing
 * catches it, ending the process; the native engine ends the request with grammar_dead_end. This
 * check refuses such grammars up front, for both: a literal with a character that cannot be
 * produced, or a character class of which no listed character can be.
 */
export interface GrammarCharacters {
  literals: string[];
  /** Non-negated classes: the characters they name (range ends included; ranges not expanded). */
  classes: string[][];
}

const SIMPLE_ESCAPES: Record<string, string> = { n: "\n", r: "\r", t: "\t", "\\": "\\", '"': '"', "[": "[", "]": "]", "-": "-", "^": "^" };

/** Reads one (possibly escaped) character at `i`; returns it and the index after it. */
function readChar(g: string, i: number): [string, number] {
  if (g[i] !== "\\") {
    const cp = g.codePointAt(i)!;
    return [String.fromCodePoint(cp), i + (cp > 0xffff ? 2 : 1)];
  }
  const e = g[i + 1] ?? "";
  const hex = e === "x" ? 2 : e === "u" ? 4 : e === "U" ? 8 : 0;
  if (hex > 0) {
    const cp = parseInt(g.slice(i + 2, i + 2 + hex), 16);
    return [Number.isFinite(cp) && cp <= 0x10ffff ? String.fromCodePoint(cp) : "", i + 2 + hex];
  }
  return [SIMPLE_ESCAPES[e] ?? e, i + 2];
}

export function grammarCharacters(g: string): GrammarCharacters {
  const out: GrammarCharacters = { literals: [], classes: [] };
  for (let i = 0; i < g.length; ) {
    const c = g[i]!;
    if (c === "#") {
      while (i < g.length && g[i] !== "\n") i++;
    } else if (c === '"') {
      let lit = "";
      for (i++; i < g.length && g[i] !== '"'; ) {
        const [ch, next] = readChar(g, i);
        lit += ch;
        i = next;
      }
      out.literals.push(lit);
      i++;
    } else if (c === "[") {
      i++;
      const negated = g[i] === "^";
      if (negated) i++;
      const chars: string[] = [];
      while (i < g.length && g[i] !== "]") {
        const [ch, next] = readChar(g, i);
        if (g[i] !== "-" || g[i - 1] === "\\") chars.push(ch);
        i = next;
      }
      if (!negated) out.classes.push(chars);
      i++;
    } else {
      i++;
    }
  }
  return out;
}

function producible(ch: string, coverage: VocabularyCoverage): boolean {
  return ch !== "\u0000" && coverage.firstUncovered(ch) === undefined;
}

/** Throws 400 `unsupported_characters` when the grammar demands a character no token can give. */
export function checkGrammarCoverage(gbnf: string, coverage: VocabularyCoverage, param: string): void {
  const { literals, classes } = grammarCharacters(gbnf);
  let bad: string | undefined;
  for (const lit of literals) {
    for (const ch of lit) {
      if (!producible(ch, coverage)) {
        bad = ch;
        break;
      }
    }
    if (bad !== undefined) break;
  }
  if (bad === undefined) {
    const dead = classes.find((chars) => chars.length > 0 && !chars.some((ch) => producible(ch, coverage)));
    bad = dead?.[0];
  }
  if (bad === undefined) return;
  const cp = `U+${bad.codePointAt(0)!.toString(16).toUpperCase().padStart(4, "0")}`;
  throw new ServingError(
    "unsupported_characters",
    `'${param}' requires ${cp}, which no token of the model's vocabulary can produce`,
    { param, details: { character: cp } },
  );
}
