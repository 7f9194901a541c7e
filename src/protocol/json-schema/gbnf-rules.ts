/**
 * The rules of one GBNF grammar being built. Rule names are generated (`r1`, `def-3`, …), never
 * taken from the schema, so a property or `$defs` name such as `__proto__` is only ever data inside
 * a quoted literal. A body that is already defined under another name is reused (the grammars of
 * many properties repeat: the same string, the same integer range).
 */
export class GbnfRules {
  private readonly byBody = new Map<string, string>();
  private readonly lines: string[] = [];
  private readonly byKey = new Map<string, string>();
  private next = 0;

  /** `namespace` prefixes every rule name, so that several schemas' rules can share one grammar. */
  constructor(private readonly namespace = "") {}

  /** Adds `body` under a fresh name (or returns the name it already has). */
  add(body: string, prefix = "r"): string {
    const known = this.byBody.get(body);
    if (known !== undefined) return known;
    const name = `${this.namespace}${prefix}${++this.next}`;
    this.byBody.set(body, name);
    this.lines.push(`${name} ::= ${body}`);
    return name;
  }

  /** The rule `key` names, built on first use (for rules that refer to themselves). */
  shared(key: string, build: () => string): string {
    let name = this.byKey.get(key);
    if (name === undefined) {
      name = build();
      this.byKey.set(key, name);
    }
    return name;
  }

  /** Reserves a name whose body comes later (recursive `$ref`s). */
  reserve(prefix: string): string {
    return `${this.namespace}${prefix}${++this.next}`;
  }

  define(name: string, body: string): void {
    this.lines.push(`${name} ::= ${body}`);
  }

  /** The grammar, `root` first. */
  toString(root: string): string {
    return [`root ::= ${root}`, ...this.lines].join("\n");
  }

  /** The rules alone (no `root`), one per line. */
  definitions(): string {
    return this.lines.join("\n");
  }
}

/** A GBNF string literal for `text` (every character outside printable ASCII written as \xHH/\uHHHH). */
export function literal(text: string): string {
  let out = '"';
  for (const ch of text) {
    const c = ch.codePointAt(0)!;
    if (ch === '"' || ch === "\\") out += "\\" + ch;
    else if (c >= 0x20 && c < 0x7f) out += ch;
    else out += codeEscape(c);
  }
  return out + '"';
}

/** One character inside a GBNF class `[...]`. */
export function classChar(c: number): string {
  const ch = String.fromCodePoint(c);
  if (ch === "]" || ch === "[" || ch === "\\" || ch === "^" || ch === "-") return "\\" + ch;
  if (c >= 0x20 && c < 0x7f) return ch;
  return codeEscape(c);
}

function codeEscape(c: number): string {
  if (c <= 0xff) return "\\x" + c.toString(16).padStart(2, "0");
  if (c <= 0xffff) return "\\u" + c.toString(16).padStart(4, "0");
  return "\\U" + c.toString(16).padStart(8, "0");
}

/** `item` repeated min..max times (max undefined: unbounded), as GBNF. */
export function repeat(item: string, min: number, max: number | undefined): string {
  if (max === undefined) return min === 0 ? `${item}*` : min === 1 ? `${item}+` : `${item}{${min},}`;
  if (max === 0) return '""';
  if (min === 0 && max === 1) return `${item}?`;
  if (min === max) return min === 1 ? item : `${item}{${min}}`;
  return `${item}{${min},${max}}`;
}
