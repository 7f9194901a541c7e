/**
 * The nesting depth of a JSON text, from its bytes, before anything parses it: `[` and `{` open a
 * level, `]` and `}` close one, and nothing inside a string counts (a `\` escapes the next byte).
 * Fed chunk by chunk as a body arrives, so a body nested too deep is refused at its first chunk,
 * unread beyond it. Malformed JSON is left to the parser: this only bounds the work a deep tree
 * would cost (JSON.parse's time and memory). One pass, O(bytes), constant state.
 */
const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const OPEN_ARRAY = 0x5b;
const OPEN_OBJECT = 0x7b;
const CLOSE_ARRAY = 0x5d;
const CLOSE_OBJECT = 0x7d;

export class JsonDepthScanner {
  private depth = 0;
  private inString = false;
  private escaped = false;
  /** Bytes fed so far. */
  private offset = 0;

  constructor(private readonly maxDepth: number) {}

  /** The body offset (bytes) where the depth first exceeds the limit, or undefined. */
  feed(bytes: Uint8Array): number | undefined {
    const base = this.offset;
    this.offset += bytes.length;
    // The state lives in locals during the loop (every body byte passes here: heartbeats, prompts).
    let { depth, inString, escaped } = this;
    const max = this.maxDepth;
    let exceeded: number | undefined;
    for (let i = 0; i < bytes.length; i++) {
      const b = bytes[i]!;
      if (inString) {
        if (escaped) escaped = false;
        else if (b === BACKSLASH) escaped = true;
        else if (b === QUOTE) inString = false;
      } else if (b === QUOTE) inString = true;
      else if (b === OPEN_ARRAY || b === OPEN_OBJECT) {
        if (++depth > max) {
          exceeded = base + i;
          break;
        }
      } else if (b === CLOSE_ARRAY || b === CLOSE_OBJECT) depth--;
    }
    this.depth = depth;
    this.inString = inString;
    this.escaped = escaped;
    return exceeded;
  }
}

/** The whole text at once (see JsonDepthScanner). */
export function jsonDepthExceeds(bytes: Uint8Array, maxDepth: number): number | undefined {
  return new JsonDepthScanner(maxDepth).feed(bytes);
}
