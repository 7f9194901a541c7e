import type { GbnfRules } from "./gbnf-rules.js";

/**
 * The shared JSON pieces. Output is compact JSON (no whitespace between tokens): fewer tokens, and
 * nothing a model could repeat forever between two values. A string character is any character but
 * `"`, `\` and controls, or an escape; `\u` escapes exclude surrogates, so that every grammar
 * character is one code point (what Ajv's minLength/maxLength count).
 */
export const STRING_CHAR = '([^"\\\\\\x00-\\x1f] | "\\\\" (["\\\\/bfnrt] | "u" ([0-9a-cA-Ce-fE-F] [0-9a-fA-F]{3} | [dD] [0-7] [0-9a-fA-F]{2})))';

/** Integers of up to 16 digits, fractions of up to 15, no exponent: every output is a finite double. */
export const NUMBER = '"-"? ("0" | [1-9] [0-9]{0,15}) ("." [0-9]{1,15})?';

export function stringRule(rules: GbnfRules): string {
  return rules.add(`"\\"" ${rules.add(STRING_CHAR, "char")}* "\\""`, "string");
}

/** Any JSON value (for `true`, `{}` and a missing `items`). */
export function anyValueRule(rules: GbnfRules): string {
  return rules.shared("any-value", () => buildAnyValue(rules));
}

function buildAnyValue(rules: GbnfRules): string {
  const value = rules.reserve("value");
  const str = stringRule(rules);
  const obj = rules.add(`"{" (${str} ":" ${value} ("," ${str} ":" ${value})*)? "}"`, "object");
  const arr = rules.add(`"[" (${value} ("," ${value})*)? "]"`, "array");
  rules.define(value, `${obj} | ${arr} | ${str} | ${rules.add(NUMBER, "number")} | "true" | "false" | "null"`);
  return value;
}
