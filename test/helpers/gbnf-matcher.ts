/**
 * A tiny GBNF interpreter for tests: parses the GBNF our schema compiler writes (literals, classes
 * with ranges/negation/escapes, rule references, groups, alternation, ? * + {m} {m,} {m,n}) and
 * either decides whether a whole string is in the grammar's language (`matches`) or draws a random
 * string from it (`sample`), independent of llama.cpp. Matching tracks the set of end positions,
 * so ambiguity costs memory, not exponential time, on the short strings tests use.
 */
type Node =
  | { k: "lit"; s: number[] }
  | { k: "cls"; neg: boolean; r: [number, number][] }
  | { k: "ref"; name: string }
  | { k: "alt"; a: Node[][] }
  | { k: "rep"; n: Node; min: number; max: number | undefined };

export class Gbnf {
  readonly rules = new Map<string, Node>();

  constructor(text: string) {
    for (const line of text.split("\n")) {
      if (line.trim() === "" || line.startsWith("#")) continue;
      const m = /^([a-zA-Z0-9-]+) ::= (.*)$/.exec(line);
      if (m === null) throw new Error(`bad rule line: ${line}`);
      const p = new Parser(m[2]!);
      this.rules.set(m[1]!, p.alt());
      if (p.i < p.s.length) throw new Error(`trailing text in rule ${m[1]}: ${p.s.slice(p.i)}`);
    }
  }

  matches(str: string, rule = "root"): boolean {
    const cps = [...str].map((c) => c.codePointAt(0)!);
    return this.ends(this.rules.get(rule)!, cps, new Set([0]), 0).has(cps.length);
  }

  private ends(n: Node, s: number[], from: Set<number>, depth: number): Set<number> {
    if (depth > 2000 || from.size === 0) return new Set();
    switch (n.k) {
      case "lit": {
        const out = new Set<number>();
        for (const p of from) if (n.s.every((c, i) => s[p + i] === c)) out.add(p + n.s.length);
        return out;
      }
      case "cls": {
        const out = new Set<number>();
        for (const p of from) {
          if (p >= s.length) continue;
          const inside = n.r.some(([a, b]) => s[p]! >= a && s[p]! <= b);
          if (inside !== n.neg) out.add(p + 1);
        }
        return out;
      }
      case "ref": {
        const r = this.rules.get(n.name);
        if (r === undefined) throw new Error(`undefined rule ${n.name}`);
        return this.ends(r, s, from, depth + 1);
      }
      case "alt": {
        const out = new Set<number>();
        for (const seq of n.a) {
          let cur = from;
          for (const x of seq) cur = this.ends(x, s, cur, depth + 1);
          for (const p of cur) out.add(p);
        }
        return out;
      }
      case "rep": {
        let cur = from;
        for (let i = 0; i < n.min; i++) cur = this.ends(n.n, s, cur, depth + 1);
        const out = new Set(cur);
        for (let i = n.min; n.max === undefined || i < n.max; i++) {
          const next = this.ends(n.n, s, cur, depth + 1);
          const fresh = [...next].filter((p) => !out.has(p));
          if (fresh.length === 0) break;
          for (const p of fresh) out.add(p);
          cur = new Set(fresh);
        }
        return out;
      }
    }
  }

  /** A random string of the language; `rng` returns [0, 1). Repetitions stop early past `depth`. */
  sample(rng: () => number, rule = "root"): string {
    const out: number[] = [];
    this.emit(this.rules.get(rule)!, rng, out, 0);
    return String.fromCodePoint(...out);
  }

  private emit(n: Node, rng: () => number, out: number[], depth: number): void {
    if (depth > 400) throw new Error("sample too deep");
    switch (n.k) {
      case "lit": out.push(...n.s); return;
      case "cls": {
        if (!n.neg) {
          const [a, b] = n.r[Math.floor(rng() * n.r.length)]!;
          out.push(a + Math.floor(rng() * (b - a + 1)));
          return;
        }
        for (;;) {
          const c = 0x20 + Math.floor(rng() * 0x5f);
          if (!n.r.some(([a, b]) => c >= a && c <= b)) { out.push(c); return; }
        }
      }
      case "ref": this.emit(this.rules.get(n.name)!, rng, out, depth + 1); return;
      case "alt": {
        // Deep in the tree, prefer the shortest-looking branch so that recursion ends.
        const seq = depth > 40 ? n.a.reduce((x, y) => (y.length < x.length ? y : x)) : n.a[Math.floor(rng() * n.a.length)]!;
        for (const x of seq) this.emit(x, rng, out, depth + 1);
        return;
      }
      case "rep": {
        const cap = n.max ?? n.min + 4;
        const times = depth > 40 ? n.min : n.min + Math.floor(rng() * (cap - n.min + 1));
        for (let i = 0; i < times; i++) this.emit(n.n, rng, out, depth + 1);
      }
    }
  }
}

class Parser {
  i = 0;
  constructor(readonly s: string) {}

  private ws(): void {
    while (this.s[this.i] === " ") this.i++;
  }

  alt(): Node {
    const a: Node[][] = [this.seq()];
    while (this.s[this.i] === "|") {
      this.i++;
      a.push(this.seq());
    }
    return a.length === 1 && a[0]!.length === 1 ? a[0]![0]! : { k: "alt", a };
  }

  private seq(): Node[] {
    const out: Node[] = [];
    for (;;) {
      this.ws();
      const c = this.s[this.i];
      if (c === undefined || c === "|" || c === ")") return out;
      out.push(this.quant(this.atom()));
    }
  }

  private atom(): Node {
    const c = this.s[this.i]!;
    if (c === '"') {
      this.i++;
      const s: number[] = [];
      while (this.s[this.i] !== '"') s.push(this.char());
      this.i++;
      return { k: "lit", s };
    }
    if (c === "[") {
      this.i++;
      const neg = this.s[this.i] === "^";
      if (neg) this.i++;
      const r: [number, number][] = [];
      while (this.s[this.i] !== "]") {
        const a = this.char();
        if (this.s[this.i] === "-" && this.s[this.i + 1] !== "]") {
          this.i++;
          r.push([a, this.char()]);
        } else r.push([a, a]);
      }
      this.i++;
      return { k: "cls", neg, r };
    }
    if (c === "(") {
      this.i++;
      const n = this.alt();
      if (this.s[this.i] !== ")") throw new Error(`unclosed group at ${this.i} in ${this.s}`);
      this.i++;
      return n;
    }
    const m = /^[a-zA-Z0-9-]+/.exec(this.s.slice(this.i));
    if (m === null) throw new Error(`unexpected '${c}' at ${this.i} in ${this.s}`);
    this.i += m[0].length;
    return { k: "ref", name: m[0] };
  }

  private quant(n: Node): Node {
    const c = this.s[this.i];
    if (c === "?") return this.i++, { k: "rep", n, min: 0, max: 1 };
    if (c === "*") return this.i++, { k: "rep", n, min: 0, max: undefined };
    if (c === "+") return this.i++, { k: "rep", n, min: 1, max: undefined };
    if (c === "{") {
      const m = /^\{(\d+)(,(\d*))?\}/.exec(this.s.slice(this.i))!;
      this.i += m[0].length;
      const min = Number(m[1]);
      return { k: "rep", n, min, max: m[2] === undefined ? min : m[3] === "" ? undefined : Number(m[3]) };
    }
    return n;
  }

  private char(): number {
    const c = this.s[this.i]!;
    if (c !== "\\") {
      const cp = this.s.codePointAt(this.i)!;
      this.i += cp > 0xffff ? 2 : 1;
      return cp;
    }
    const e = this.s[this.i + 1]!;
    this.i += 2;
    const hex = (len: number) => {
      const v = parseInt(this.s.slice(this.i, this.i + len), 16);
      this.i += len;
      return v;
    };
    switch (e) {
      case "x": return hex(2);
      case "u": return hex(4);
      case "U": return hex(8);
      case "n": return 10;
      case "r": return 13;
      case "t": return 9;
      default: return e.codePointAt(0)!;
    }
  }
}
