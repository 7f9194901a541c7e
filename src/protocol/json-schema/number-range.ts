import { digitRange, group } from "./integer-range.js";

/**
 * Exact grammars for JSON numbers (not only integers) between integer bounds, by construction of the
 * digits: a number is an integer part I and a fraction f in [0, 1), never an exponent. For a
 * magnitude m = I.f in [a, b] (a, b whole, each bound inclusive or exclusive):
 *   I strictly between a and b: any fraction; I = a: any fraction if a is allowed, else a fraction
 *   that is not all zeros; I = b: only a fraction of zeros (b itself), if b is allowed.
 * A negative number is "-" and a magnitude above zero. Fractions have at most `MAX_FRACTION`
 * digits so that generation ends. Non-integer bounds are refused by the caller.
 */
export const MAX_FRACTION = 15;

/**
 * Parsing rounds a decimal to a double; with at most 15 significant digits on both sides of a bound
 * (DBL_DIG) distinct decimals stay distinct and ordered, so no output rounds onto or past a bound.
 * Fractions therefore get 15 minus the digits of the largest bound (none left: integers only).
 */
function fractions(lo: Bound | undefined, hi: Bound | undefined): Fractions {
  const digits = Math.max(...[lo, hi].map((b) => (b === undefined ? 0 : (b.value < 0n ? -b.value : b.value).toString().length)));
  const n = Math.min(MAX_FRACTION, 15 - digits);
  if (n <= 0) return { any: "", zero: "", nonzero: undefined };
  return {
    any: ` ("." [0-9]{1,${n}})?`,
    zero: ` ("." "0"{1,${n}})?`,
    nonzero: n === 1 ? ' "." [1-9]' : ` "." [0-9]{0,${n - 1}} [1-9]`,
  };
}

interface Fractions {
  any: string;
  zero: string;
  nonzero: string | undefined;
}

export interface Bound {
  value: bigint;
  inclusive: boolean;
}

export function numberRange(lo: Bound | undefined, hi: Bound | undefined): string {
  const parts: string[] = [];
  const f = fractions(lo, hi);
  // Negative part: x < 0, x = -m, m in (0, …]: bounds mirror.
  if (lo === undefined || lo.value < 0n) {
    const magLo: Bound = hi !== undefined && hi.value < 0n ? { value: -hi.value, inclusive: hi.inclusive } : { value: 0n, inclusive: false };
    const magHi: Bound | undefined = lo === undefined ? undefined : { value: -lo.value, inclusive: lo.inclusive };
    const m = magnitude(magLo, magHi, f);
    if (m !== undefined) parts.push(`"-" ${group(m)}`);
  }
  // Non-negative part: x >= 0.
  if (hi === undefined || hi.value > 0n || (hi.value === 0n && hi.inclusive)) {
    const from: Bound = lo !== undefined && lo.value >= 0n ? lo : { value: 0n, inclusive: true };
    const m = magnitude(from, hi, f);
    if (m !== undefined) parts.push(m);
  }
  if (parts.length === 0) throw new RangeError("empty number range");
  return parts.length === 1 ? parts[0]! : parts.map(group).join(" | ");
}

/** Magnitudes (no sign) in [a, b], bounds whole and non-negative; undefined when empty. */
function magnitude(a: Bound, b: Bound | undefined, f: Fractions): string | undefined {
  const alts: string[] = [];
  if (b !== undefined && a.value === b.value) {
    return a.inclusive && b.inclusive ? `"${a.value}"${f.zero}` : undefined;
  }
  if (b !== undefined && a.value > b.value) return undefined;
  if (a.inclusive) alts.push(`"${a.value}"${f.any}`);
  else if (f.nonzero !== undefined) alts.push(`"${a.value}"${f.nonzero}`);
  const midLo = a.value + 1n;
  const midHi = b === undefined ? undefined : b.value - 1n;
  if (midHi === undefined || midLo <= midHi) alts.push(`${group(digitRange(midLo, midHi))}${f.any}`);
  if (b !== undefined && b.inclusive) alts.push(`"${b.value}"${f.zero}`);
  if (alts.length === 0) return undefined;
  return alts.length === 1 ? alts[0]! : alts.map(group).join(" | ");
}

