import { classChar, literal } from "./gbnf-rules.js";

/**
 * A set of Unicode code points as sorted, disjoint ranges, and its GBNF inside a JSON string: the
 * characters JSON must escape (`"`, `\`, controls below U+0020) come out as their escape sequences
 * (`\"`, `\\`, `\n`, `\u0001`), everything else as itself. Lone surrogates are never produced.
 */
export type Ranges = [number, number][];

export const MAX_CODE_POINT = 0x10ffff;

export function normalize(ranges: Ranges): Ranges {
  const sorted = ranges.map(([a, b]) => [Math.min(a, b), Math.max(a, b)] as [number, number]).sort((x, y) => x[0] - y[0]);
  const out: Ranges = [];
  for (const r of sorted) {
    const last = out[out.length - 1];
    if (last !== undefined && r[0] <= last[1] + 1) last[1] = Math.max(last[1], r[1]);
    else out.push([r[0], r[1]]);
  }
  return out;
}

export function complement(ranges: Ranges): Ranges {
  const out: Ranges = [];
  let from = 0;
  for (const [a, b] of normalize(ranges)) {
    if (a > from) out.push([from, a - 1]);
    from = b + 1;
  }
  if (from <= MAX_CODE_POINT) out.push([from, MAX_CODE_POINT]);
  return out;
}

export function subtract(ranges: Ranges, minus: Ranges): Ranges {
  return intersect(ranges, complement(minus));
}

function intersect(a: Ranges, b: Ranges): Ranges {
  const out: Ranges = [];
  for (const [x0, x1] of normalize(a)) {
    for (const [y0, y1] of normalize(b)) {
      const lo = Math.max(x0, y0);
      const hi = Math.min(x1, y1);
      if (lo <= hi) out.push([lo, hi]);
    }
  }
  return out;
}

/** Characters that appear escaped in JSON, or never (surrogates). */
const SPECIAL: Ranges = [[0, 0x1f], [0x22, 0x22], [0x5c, 0x5c], [0xd800, 0xdfff]];

/** The GBNF of one JSON-string character from `ranges` (undefined when the set is empty). */
export function charSetGbnf(ranges: Ranges): string | undefined {
  const set = normalize(ranges);
  const plain = subtract(set, SPECIAL);
  const alts: string[] = [];
  if (plain.length > 0) alts.push(`[${plain.map(([a, b]) => (a === b ? classChar(a) : `${classChar(a)}-${classChar(b)}`)).join("")}]`);
  for (const c of [...codePoints(intersect(set, [[0, 0x1f]])), ...codePoints(intersect(set, [[0x22, 0x22], [0x5c, 0x5c]]))]) {
    alts.push(literal(JSON.stringify(String.fromCodePoint(c)).slice(1, -1)));
  }
  if (alts.length === 0) return undefined;
  return alts.length === 1 ? alts[0]! : `(${alts.join(" | ")})`;
}

function codePoints(ranges: Ranges): number[] {
  const out: number[] = [];
  for (const [a, b] of ranges) for (let c = a; c <= b; c++) out.push(c);
  return out;
}
