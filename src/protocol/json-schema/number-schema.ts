import { integerRange } from "./integer-range.js";
import { NUMBER } from "./json-primitives.js";
import { numberRange, type Bound } from "./number-range.js";
import { fail, type Schema, type SchemaContext } from "./schema-context.js";

/**
 * Numbers and integers: minimum, maximum, exclusiveMinimum, exclusiveMaximum (numeric, as in
 * draft 2020-12), multipleOf, and the numeric formats Ajv knows (int32, int64: bounds; float,
 * double: no constraint). Integer ranges are exact digit grammars (integer-range.ts), whatever the
 * bounds. A `number` with bounds is exact by construction when the bounds are whole numbers
 * (number-range.ts) and refused otherwise. multipleOf k (a positive integer) is a set of states
 * "value mod k" over up to 15 digits when unbounded, a list of the multiples when the range holds at most
 * `MAX_LISTED` of them, else refused; a fractional multipleOf is refused (Ajv's own float check
 * would disagree with exact decimal arithmetic).
 */
export const NUMBER_KEYWORDS = ["minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf"] as const;
export const MAX_LISTED = 256;
/**
 * Outputs stay within ±(2^53 − 1), where every integer is an exact double: past it, parsing rounds
 * (99999999999999999 reads as 1e17) and a value could land on or across a bound. Wider bounds are
 * narrowed to it (fewer outputs, all valid); a range entirely past it is refused.
 */
export const SAFE = 9007199254740991n;
/** multipleOf without bounds: one rule per remainder. */
export const MAX_MODULUS = 32;

const FORMAT_BOUNDS: Record<string, [bigint, bigint] | null> = {
  int32: [-(2n ** 31n), 2n ** 31n - 1n],
  int64: [-(2n ** 63n), 2n ** 63n - 1n],
  float: null,
  double: null,
};

export function numberGrammar(ctx: SchemaContext, s: Schema, pointer: string, integer: boolean): string {
  const num = (key: string): number | undefined => {
    const v = s[key];
    if (v === undefined) return undefined;
    if (typeof v !== "number" || !Number.isFinite(v)) fail(ctx, `${pointer}/${key}`, `has '${key}' that is not a finite number`);
    return v;
  };
  let formatBounds: [bigint, bigint] | null = null;
  if (s.format !== undefined) {
    if (typeof s.format !== "string" || !Object.hasOwn(FORMAT_BOUNDS, s.format)) fail(ctx, `${pointer}/format`, `uses format '${String(s.format)}' on a number`);
    formatBounds = FORMAT_BOUNDS[s.format]!;
    if (formatBounds !== null) integer = true;
  }
  const step = num("multipleOf");
  if (step !== undefined) {
    if (step <= 0) fail(ctx, `${pointer}/multipleOf`, "has 'multipleOf' that is not positive");
    if (!Number.isInteger(step)) fail(ctx, `${pointer}/multipleOf`, `uses a fractional 'multipleOf' (${step})`);
    integer = true; // multiples of a whole number are whole numbers
  }
  const min = num("minimum");
  const max = num("maximum");
  const xmin = num("exclusiveMinimum");
  const xmax = num("exclusiveMaximum");
  if (integer) {
    // The tightest whole bounds: x ≥ m means x ≥ ceil(m); x > m means x ≥ floor(m) + 1.
    let lo = maxOf(min === undefined ? undefined : BigInt(Math.ceil(min)), xmin === undefined ? undefined : BigInt(Math.floor(xmin)) + 1n);
    let hi = minOf(max === undefined ? undefined : BigInt(Math.floor(max)), xmax === undefined ? undefined : BigInt(Math.ceil(xmax)) - 1n);
    if (formatBounds !== null) {
      lo = maxOf(lo, formatBounds[0]);
      hi = minOf(hi, formatBounds[1]);
    }
    if (lo !== undefined && hi !== undefined && lo > hi) fail(ctx, pointer, "has bounds that no integer satisfies");
    if (step !== undefined && step !== 1) return multiples(ctx, BigInt(step), lo, hi, pointer);
    if ((lo !== undefined && lo > SAFE) || (hi !== undefined && hi < -SAFE)) fail(ctx, pointer, "has a range beyond ±(2^53 − 1), where integers are not exact");
    return integerRange(maxOf(lo, -SAFE), minOf(hi, SAFE));
  }
  if (min === undefined && max === undefined && xmin === undefined && xmax === undefined) return NUMBER;
  const bound = (v: number | undefined, x: number | undefined, lower: boolean): Bound | undefined => {
    const pick = v === undefined ? x : x === undefined ? v : lower ? (x >= v ? x : v) : x <= v ? x : v;
    if (pick === undefined) return undefined;
    const key = pick === x ? (lower ? "exclusiveMinimum" : "exclusiveMaximum") : lower ? "minimum" : "maximum";
    if (!Number.isInteger(pick)) fail(ctx, `${pointer}/${key}`, `has a fractional '${key}' (${pick}) on a number, which no digit grammar here enforces exactly`);
    return { value: BigInt(pick), inclusive: pick !== x };
  };
  let lo = bound(min, xmin, true);
  let hi = bound(max, xmax, false);
  if ((lo !== undefined && lo.value >= SAFE) || (hi !== undefined && hi.value <= -SAFE)) fail(ctx, pointer, "has a range beyond ±(2^53 − 1), where numbers are not exact");
  if (lo !== undefined && lo.value < -SAFE) lo = { value: -SAFE, inclusive: true };
  if (hi !== undefined && hi.value > SAFE) hi = { value: SAFE, inclusive: true };
  try {
    return numberRange(lo, hi);
  } catch {
    return fail(ctx, pointer, "has bounds that no number satisfies");
  }
}

function multiples(ctx: SchemaContext, k: bigint, lo: bigint | undefined, hi: bigint | undefined, pointer: string): string {
  if (lo !== undefined && hi !== undefined) {
    const first = ceilDiv(lo, k) * k;
    const values: string[] = [];
    for (let v = first; v <= hi; v += k) {
      if (values.length === MAX_LISTED) fail(ctx, `${pointer}/multipleOf`, `combines 'multipleOf' with a range holding more than ${MAX_LISTED} multiples`);
      values.push(`"${v}"`);
    }
    if (values.length === 0) fail(ctx, pointer, "has bounds that no multiple of 'multipleOf' satisfies");
    return values.join(" | ");
  }
  if (lo !== undefined || hi !== undefined) fail(ctx, `${pointer}/multipleOf`, "combines 'multipleOf' with a one-sided bound");
  if (k > BigInt(MAX_MODULUS)) fail(ctx, `${pointer}/multipleOf`, `uses 'multipleOf' above ${MAX_MODULUS} without both bounds`);
  return `"-"? ${modulusZero(ctx, Number(k))}`;
}

/**
 * Decimal strings (no leading zeros, at most 15 digits: every one parses to the exact integer)
 * divisible by k. A state is (r, n): the digits so far are r mod k and n more may follow; digit d
 * moves to ((10r + d) mod k, n − 1); the string may end where r = 0.
 */
function modulusZero(ctx: SchemaContext, k: number): string {
  let prev: (string | undefined)[] = Array.from({ length: k }, (_, r) => (r === 0 ? '""' : undefined));
  for (let n = 1; n < 15; n++) {
    const cur: (string | undefined)[] = [];
    for (let r = 0; r < k; r++) {
      const alts = r === 0 ? ['""'] : [];
      for (let d = 0; d <= 9; d++) {
        const next = prev[(10 * r + d) % k];
        if (next !== undefined) alts.push(next === '""' ? `"${d}"` : `"${d}" ${next}`);
      }
      cur.push(alts.length === 0 ? undefined : ctx.rules.add(alts.join(" | "), "mod"));
    }
    prev = cur;
  }
  const starts = ['"0"'];
  for (let d = 1; d <= 9; d++) {
    const next = prev[d % k];
    if (next !== undefined) starts.push(`"${d}" ${next}`);
  }
  return `(${starts.join(" | ")})`;
}

function ceilDiv(a: bigint, b: bigint): bigint {
  const q = a / b;
  return q * b < a ? q + 1n : q;
}

function maxOf(a: bigint | undefined, b: bigint | undefined): bigint | undefined {
  return a === undefined ? b : b === undefined ? a : a > b ? a : b;
}

function minOf(a: bigint | undefined, b: bigint | undefined): bigint | undefined {
  return a === undefined ? b : b === undefined ? a : a < b ? a : b;
}
