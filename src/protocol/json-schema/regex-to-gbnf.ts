import { charSetGbnf, complement, normalize, type Ranges } from "./char-set.js";
import { repeat } from "./gbnf-rules.js";

/**
 * A JSON Schema `pattern` (ECMAScript syntax, read as Ajv reads it: the `u` flag) as the GBNF of a
 * JSON string's content that matches it. The subset: literals and escapes (\d \w \s and their
 * negations, \t \n \r \f \v \0 \xHH \uHHHH \u{…}, escaped syntax characters), classes with ranges
 * and negation, `.`, groups ((…), (?:…), (?<name>…)), alternation, the quantifiers ? * + {n}
 * {n,}
 * {n,m} (lazy or not: the same language; unbounded ones capped at `UNBOUNDED_EXTRA` more copies), `^` at the start and `$` at the end of a top-level
 * branch. The grammar produces whole matches, which `RegExp.test` accepts anchored or not.
 * Anything else (lookaround, backreferences, \b, \p{…}, an anchor elsewhere) is a `PatternError`
 * naming the construct and its offset.
 */
export class PatternError extends Error {}

/** A bounded repetition above this many copies would blow the grammar up. */
export const MAX_REPEAT = 256;
/**
 * `*`, `+` and `{n,}` produce at most this many copies beyond their minimum: a pattern describes a
 * token (a code, a number), and a model must not be able to extend it forever. Fewer strings, all
 * of them matches.
 */
export const UNBOUNDED_EXTRA = 32;

const DIGIT: Ranges = [[0x30, 0x39]];
const WORD: Ranges = [[0x30, 0x39], [0x41, 0x5a], [0x5f, 0x5f], [0x61, 0x7a]];
const SPACE: Ranges = [[0x09, 0x0d], [0x20, 0x20], [0xa0, 0xa0], [0x1680, 0x1680], [0x2000, 0x200a], [0x2028, 0x2029], [0x202f, 0x202f], [0x205f, 0x205f], [0x3000, 0x3000], [0xfeff, 0xfeff]];
const LINE_TERMINATORS: Ranges = [[0x0a, 0x0a], [0x0d, 0x0d], [0x2028, 0x2029]];
const SYNTAX = "^$\\.*+?()[]{}|/-";

export function regexToGbnf(pattern: string): string {
  return new Parser(pattern).parse();
}

class Parser {
  private i = 0;
  constructor(private readonly src: string) {}

  parse(): string {
    const alts: string[] = [];
    do alts.push(this.sequence(true)); while (this.eat("|"));
    if (this.i < this.src.length) this.fail(`unexpected '${this.src[this.i]}'`);
    return alternation(alts);
  }

  private fail(what: string): never {
    throw new PatternError(`${what} at offset ${this.i}`);
  }

  private peek(): string | undefined {
    return this.src[this.i];
  }

  private eat(s: string): boolean {
    if (this.src.startsWith(s, this.i)) {
      this.i += s.length;
      return true;
    }
    return false;
  }

  /** One branch; `top`: a branch of the whole pattern, where ^ may open and $ may close it. */
  private sequence(top: boolean): string {
    const terms: string[] = [];
    const start = this.i;
    while (this.i < this.src.length && this.peek() !== "|" && this.peek() !== ")") {
      if (this.peek() === "^") {
        if (!top || this.i !== start) this.fail("the anchor '^' inside the pattern (only at the start of a top-level branch)");
        this.i++;
        continue;
      }
      if (this.peek() === "$") {
        this.i++;
        if (!top || (this.i < this.src.length && this.peek() !== "|")) this.fail("the anchor '$' inside the pattern (only at the end of a top-level branch)");
        continue;
      }
      const atom = this.atom();
      terms.push(this.quantified(atom));
    }
    return terms.length === 0 ? '""' : terms.join(" ");
  }

  private quantified(atom: string): string {
    const c = this.peek();
    let min: number;
    let max: number | undefined;
    if (c === "*") [min, max] = [0, undefined];
    else if (c === "+") [min, max] = [1, undefined];
    else if (c === "?") [min, max] = [0, 1];
    else if (c === "{") {
      const m = /^\{(\d+)(,(\d*))?\}/.exec(this.src.slice(this.i));
      if (m === null) this.fail("a '{' that is not a quantifier {n}, {n,} or {n,m}");
      min = Number(m[1]);
      max = m[2] === undefined ? min : m[3] === "" ? undefined : Number(m[3]);
      if (max !== undefined && max < min) this.fail("a quantifier {n,m} with m < n");
      if (min > MAX_REPEAT || (max ?? 0) > MAX_REPEAT) this.fail(`a repetition count above ${MAX_REPEAT}`);
      this.i += m[0].length - 1;
    } else return atom;
    this.i++;
    max ??= min + UNBOUNDED_EXTRA;
    this.eat("?"); // lazy: the same language
    const next = this.peek();
    if (next !== undefined && "*+?{".includes(next)) this.fail("a quantifier applied to a quantifier");
    return repeat(atom.startsWith("(") || !/\s/.test(atom) ? atom : `(${atom})`, min, max);
  }

  private atom(): string {
    const c = this.peek()!;
    if (c === "(") return this.group();
    if (c === "[") return this.cls();
    if (c === ".") {
      this.i++;
      return set(complement(LINE_TERMINATORS));
    }
    if (c === "\\") {
      this.i++;
      const r = this.escape(false);
      return set(r);
    }
    if ("*+?{".includes(c)) this.fail(`a quantifier '${c}' with nothing to repeat`);
    if (c === "]" || c === "}") this.fail(`a lone '${c}'`);
    const cp = this.src.codePointAt(this.i)!;
    this.i += cp > 0xffff ? 2 : 1;
    return set([[cp, cp]]);
  }

  private group(): string {
    this.i++;
    if (this.eat("?:")) {
      // non-capturing
    } else if (this.src.startsWith("?<", this.i) && !this.src.startsWith("?<=", this.i) && !this.src.startsWith("?<!", this.i)) {
      const m = /^\?<[A-Za-z_$][\w$]*>/.exec(this.src.slice(this.i));
      if (m === null) this.fail("a malformed group name");
      this.i += m[0].length;
    } else if (this.peek() === "?") {
      this.fail(`the lookaround or group modifier '(${this.src.slice(this.i, this.i + 3)}'`);
    }
    const alts: string[] = [];
    do alts.push(this.sequence(false)); while (this.eat("|"));
    if (!this.eat(")")) this.fail("an unclosed group");
    return `(${alternation(alts)})`;
  }

  private cls(): string {
    this.i++;
    const negated = this.eat("^");
    const ranges: Ranges = [];
    while (this.peek() !== "]") {
      if (this.i >= this.src.length) this.fail("an unclosed character class");
      const from = this.classAtom();
      if (this.peek() === "-" && this.src[this.i + 1] !== "]" && this.i + 1 < this.src.length) {
        this.i++;
        const to = this.classAtom();
        if (from.length !== 1 || to.length !== 1 || from[0]![0] !== from[0]![1] || to[0]![0] !== to[0]![1]) this.fail("a class range with a class escape at one end");
        if (to[0]![0] < from[0]![0]) this.fail("a class range out of order");
        ranges.push([from[0]![0], to[0]![0]]);
      } else ranges.push(...from);
    }
    this.i++;
    return set(negated ? complement(ranges) : ranges);
  }

  private classAtom(): Ranges {
    if (this.peek() === "\\") {
      this.i++;
      return this.escape(true);
    }
    const cp = this.src.codePointAt(this.i)!;
    this.i += cp > 0xffff ? 2 : 1;
    return [[cp, cp]];
  }

  /** After a backslash: the characters the escape stands for. */
  private escape(inClass: boolean): Ranges {
    const c = this.peek();
    if (c === undefined) this.fail("a trailing backslash");
    this.i++;
    switch (c) {
      case "d": return DIGIT;
      case "D": return complement(DIGIT);
      case "w": return WORD;
      case "W": return complement(WORD);
      case "s": return SPACE;
      case "S": return complement(SPACE);
      case "t": return [[9, 9]];
      case "n": return [[10, 10]];
      case "v": return [[11, 11]];
      case "f": return [[12, 12]];
      case "r": return [[13, 13]];
      case "0":
        if (/\d/.test(this.peek() ?? "")) this.fail("an octal escape");
        return [[0, 0]];
      case "x": {
        const m = /^[0-9a-fA-F]{2}/.exec(this.src.slice(this.i));
        if (m === null) this.fail("a malformed \\x escape");
        this.i += 2;
        const v = parseInt(m[0], 16);
        return [[v, v]];
      }
      case "u": {
        const m = /^(?:([0-9a-fA-F]{4})|\{([0-9a-fA-F]{1,6})\})/.exec(this.src.slice(this.i));
        if (m === null) this.fail("a malformed \\u escape");
        this.i += m[0].length;
        const v = parseInt(m[1] ?? m[2]!, 16);
        return [[v, v]];
      }
      case "b":
        if (inClass) return [[8, 8]];
        return this.fail("the word boundary '\\b'");
      case "-":
        if (inClass) return [[0x2d, 0x2d]];
        return this.fail("the escape '\\-' outside a class");
      default:
        if (SYNTAX.includes(c)) return [[c.charCodeAt(0), c.charCodeAt(0)]];
        if (/[1-9]/.test(c) || c === "k") return this.fail(`the backreference '\\${c}'`);
        return this.fail(`the escape '\\${c}'`);
    }
  }
}

function set(ranges: Ranges): string {
  const g = charSetGbnf(normalize(ranges));
  if (g === undefined) throw new PatternError("a character class that matches nothing a JSON string can hold");
  return g;
}

function alternation(alts: string[]): string {
  return alts.length === 1 ? alts[0]! : alts.map((a) => (/\s/.test(a) ? `(${a})` : a)).join(" | ");
}
