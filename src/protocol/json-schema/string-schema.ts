import { repeat } from "./gbnf-rules.js";
import { STRING_CHAR } from "./json-primitives.js";
import { PatternError, regexToGbnf } from "./regex-to-gbnf.js";
import { count, fail, type Schema, type SchemaContext } from "./schema-context.js";
import { formatGbnf, PATTERNS_IMPLIED_BY_FORMAT } from "./string-formats.js";

/**
 * Strings: minLength/maxLength (characters, as Ajv counts code points), `pattern` (regex-to-gbnf.ts)
 * and `format` (string-formats.ts). A pattern together with a format is enforced only where the
 * pattern is one known to hold for the whole format grammar; pattern or format together with a
 * length bound is refused (no intersection of languages is built).
 */
export const STRING_KEYWORDS = ["minLength", "maxLength", "pattern", "format"] as const;

export function stringGrammar(ctx: SchemaContext, s: Schema, pointer: string): string {
  const min = count(ctx, s, "minLength", pointer) ?? 0;
  const max = count(ctx, s, "maxLength", pointer);
  if (max !== undefined && max < min) fail(ctx, `${pointer}/maxLength`, "has 'maxLength' below 'minLength'");
  const lengthBound = s.minLength !== undefined || s.maxLength !== undefined;
  const { format, pattern } = s;
  let content: string;
  if (format !== undefined) {
    if (typeof format !== "string") fail(ctx, `${pointer}/format`, "has a 'format' that is not a string");
    const g = formatGbnf(format);
    if (g === undefined) fail(ctx, `${pointer}/format`, `uses format '${format}'`);
    if (pattern !== undefined && !(PATTERNS_IMPLIED_BY_FORMAT[format] ?? []).includes(pattern as string)) {
      fail(ctx, `${pointer}/pattern`, `combines 'pattern' with format '${format}' (only the patterns zod writes for that format are known to agree with it)`);
    }
    if (lengthBound) fail(ctx, `${pointer}/format`, "combines 'format' with 'minLength'/'maxLength'");
    content = g;
  } else if (pattern !== undefined) {
    if (typeof pattern !== "string") fail(ctx, `${pointer}/pattern`, "has a 'pattern' that is not a string");
    if (lengthBound) fail(ctx, `${pointer}/pattern`, "combines 'pattern' with 'minLength'/'maxLength'");
    try {
      content = regexToGbnf(pattern);
    } catch (err) {
      if (!(err instanceof PatternError)) throw err;
      fail(ctx, `${pointer}/pattern`, `has a pattern with ${err.message}`);
    }
  } else {
    content = repeat(ctx.rules.add(STRING_CHAR, "char"), min, max);
  }
  return `"\\"" ${content.includes(" ") ? `(${content})` : content} "\\""`;
}
