/**
 * The nesting depth of a JSON text, from its bytes, before anything parses it: `[` and `{` open a
 * level, `]` and `}` close one, and nothing inside a string counts (a `\` escapes the next byte).
 * Returns the byte offset where the depth first exceeds `maxDepth`, or undefined. Malformed JSON is
 * left to the parser: this only bounds the work a deep tree would cost. One pass, O(bytes).
 */
const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const OPEN_ARRAY = 0x5b;
const OPEN_OBJECT = 0x7b;
const CLOSE_ARRAY = 0x5d;
const CLOSE_OBJECT = 0x7d;

export function jsonDepthExceeds(bytes: Uint8Array, maxDepth: number): number | undefined {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i]!;
    if (inString) {
      if (b === BACKSLASH) i++;
      else if (b === QUOTE) inString = false;
    } else if (b === QUOTE) inString = true;
    else if (b === OPEN_ARRAY || b === OPEN_OBJECT) {
      if (++depth > maxDepth) return i;
    } else if (b === CLOSE_ARRAY || b === CLOSE_OBJECT) depth--;
  }
  return undefined;
}
