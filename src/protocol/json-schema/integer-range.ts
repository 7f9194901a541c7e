/**
 * Exact digit grammars for integer ranges. `digitRange(lo, hi)` is the GBNF of the decimal strings
 * without leading zeros whose value lies in [lo, hi] (lo ≥ 0; hi undefined: no upper bound, capped at
 * `MAX_DIGITS` digits so that generation ends). `integerRange(lo, hi)` adds the sign for ranges that
 * reach below zero ("-0" is never produced). Built as llama.cpp's converter does: per digit length,
 * a range of same-length strings splits into a shared prefix, a middle of free digits and two edges.
 * Bounds are bigints: zod's ±9007199254740991 (2^53 − 1) and beyond are exact.
 */
export const MAX_DIGITS = 16;

export function integerRange(lo: bigint | undefined, hi: bigint | undefined): string {
  const parts: string[] = [];
  if (lo === undefined || lo < 0n) {
    // Negative values: "-" and a magnitude in [max(1, -hi), -lo].
    const magLo = hi !== undefined && hi < 0n ? -hi : 1n;
    const magHi = lo === undefined ? undefined : -lo;
    if (magHi === undefined || magLo <= magHi) parts.push(`"-" ${group(digitRange(magLo, magHi))}`);
  }
  if (hi === undefined || hi >= 0n) {
    const from = lo !== undefined && lo > 0n ? lo : 0n;
    if (hi === undefined || from <= hi) parts.push(digitRange(from, hi));
  }
  if (parts.length === 0) throw new RangeError(`empty integer range [${lo}, ${hi}]`);
  return parts.length === 1 ? parts[0]! : parts.map(group).join(" | ");
}

export function digitRange(lo: bigint, hi: bigint | undefined): string {
  const loS = lo.toString();
  const hiS = hi === undefined ? undefined : hi.toString();
  const maxLen = hiS === undefined ? Math.max(loS.length, MAX_DIGITS) : hiS.length;
  const alts: string[] = [];
  for (let len = loS.length; len <= maxLen; len++) {
    const a = len === loS.length ? loS : "1" + "0".repeat(len - 1);
    const b = hiS !== undefined && len === hiS.length ? hiS : "9".repeat(len);
    if (hiS === undefined && len > loS.length) {
      // Every length past lo's is free: one alternative for all of them.
      alts.push(`[1-9] [0-9]{${len - 1},${maxLen - 1}}`);
      break;
    }
    alts.push(sameLength(a, b));
  }
  return alts.length === 1 ? alts[0]! : alts.map(group).join(" | ");
}

/** Strings of a's length between a and b (a ≤ b, same length), each digit position exact. */
function sameLength(a: string, b: string): string {
  if (a.length === 0) return '""';
  if (a === b) return `"${a}"`;
  if (a[0] === b[0]) return seq(`"${a[0]}"`, sameLength(a.slice(1), b.slice(1)));
  const restA = a.slice(1);
  const restB = b.slice(1);
  const n = restA.length;
  const alts: string[] = [];
  let midFrom = Number(a[0]);
  let midTo = Number(b[0]);
  if (!/^0*$/.test(restA)) {
    alts.push(seq(`"${a[0]}"`, sameLength(restA, "9".repeat(n))));
    midFrom++;
  }
  const lowEdgeFree = /^9*$/.test(restB);
  if (!lowEdgeFree) midTo--;
  if (midFrom <= midTo) alts.push(seq(digitClass(midFrom, midTo), free(n)));
  if (!lowEdgeFree) alts.push(seq(`"${b[0]}"`, sameLength("0".repeat(n), restB)));
  return alts.length === 1 ? alts[0]! : alts.map(group).join(" | ");
}

function digitClass(from: number, to: number): string {
  return from === to ? `"${from}"` : `[${from}-${to}]`;
}

function free(n: number): string {
  return n === 0 ? '""' : n === 1 ? "[0-9]" : `[0-9]{${n}}`;
}

function seq(a: string, b: string): string {
  if (b === '""') return a;
  return `${a} ${group(b)}`;
}

/** Parenthesised unless it is one term without a top-level alternation. */
export function group(expr: string): string {
  return hasTopLevelBar(expr) || /\s/.test(expr.trim()) && !isSingleTerm(expr) ? `(${expr})` : expr;
}

/**
 * Calls `visit` with each character of a GBNF expression that is outside string literals and
 * character classes (escapes skipped), with its index and the parenthesis depth before it; stops
 * and answers true as soon as `visit` does.
 */
function scanStructure(expr: string, visit: (c: string, i: number, depth: number) => boolean): boolean {
  let depth = 0;
  let inStr = false;
  let inCls = false;
  for (let i = 0; i < expr.length; i++) {
    const c = expr[i]!;
    if (c === "\\") { i++; continue; }
    if (inStr) { if (c === '"') inStr = false; continue; }
    if (inCls) { if (c === "]") inCls = false; continue; }
    if (c === '"') inStr = true;
    else if (c === "[") inCls = true;
    else if (visit(c, i, depth)) return true;
    if (c === "(") depth++;
    else if (c === ")") depth--;
  }
  return false;
}

function hasTopLevelBar(expr: string): boolean {
  return scanStructure(expr, (c, _i, depth) => c === "|" && depth === 0);
}

function isSingleTerm(expr: string): boolean {
  const t = expr.trim();
  return /^\(.*\)$/.test(t) && balancedOuter(t);
}

/** The first "(" closes only at the very end: the whole expression is one group. */
function balancedOuter(t: string): boolean {
  return !scanStructure(t, (c, i, depth) => c === ")" && depth === 1 && i < t.length - 1);
}
