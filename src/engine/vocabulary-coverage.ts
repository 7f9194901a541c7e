import { ServingError } from "../protocol/serving-error.js";

/**
 * What text a model's vocabulary can tokenize at all, and how many bytes its longest token spans,
 * read from the GGUF's tokenizer metadata so that both checks run in TypeScript before any native
 * tokenizer does.
 *
 * Coverage: llama.cpp's SentencePiece tokenizer ("llama") maps a character that no piece covers to
 * byte tokens `<0xXX>`; a vocabulary without them (some published models) makes it throw
 * `std::out_of_range`, which kills a process that does not catch it. Here a character is covered
 * when it is a piece of its own (a space is the piece "▁") or every byte of its UTF-8 form has a
 * byte token. Other tokenizers (byte-level BPE, WordPiece, Unigram) never throw on unknown text:
 * everything is covered.
 *
 * Length: no token spans more bytes of text than its piece has, so a text of B bytes needs at least
 * ceil(B / longest) tokens; a prompt whose lower bound exceeds the context is refused before it is
 * tokenized (tokenizing a huge prompt costs the worker's only thread).
 */
export interface VocabularySource {
  /** `tokenizer.ggml.model` */
  model: string;
  tokens: readonly string[];
  /** `tokenizer.ggml.token_type`, when the file has it. */
  types?: readonly number[];
}

const TOKEN_CONTROL = 3;
const TOKEN_BYTE = 6;
/** SentencePiece's mark for a space. */
const SPACE_MARK = "▁";

export interface Uncovered {
  /** The character, e.g. "é". */
  char: string;
  /** Its code point as U+XXXX (a lone surrogate included). */
  codePoint: string;
  /** Offset in UTF-16 code units (JavaScript string index). */
  offset: number;
}

export class VocabularyCoverage {
  /** Longest piece, in UTF-8 bytes (control tokens excluded: plain text never produces them). */
  readonly longestTokenBytes: number;
  /** undefined: every text is covered. */
  private readonly pieces: ReadonlySet<string> | undefined;
  private readonly bytes: readonly boolean[];

  constructor(src: VocabularySource) {
    let longest = 1;
    const bytes = new Array<boolean>(256).fill(false);
    const pieces = new Set<string>();
    for (let i = 0; i < src.tokens.length; i++) {
      const piece = src.tokens[i]!;
      const type = src.types?.[i];
      if (type === TOKEN_CONTROL) continue;
      const byte = /^<0x([0-9A-Fa-f]{2})>$/.exec(piece);
      if (byte !== null && (type === undefined || type === TOKEN_BYTE)) {
        bytes[parseInt(byte[1]!, 16)] = true;
        continue;
      }
      longest = Math.max(longest, Buffer.byteLength(piece, "utf8"));
      // One code point (a surrogate pair is one).
      if (piece.length === 1 || (piece.length === 2 && piece.codePointAt(0)! > 0xffff)) pieces.add(piece);
    }
    this.longestTokenBytes = longest;
    this.bytes = bytes;
    this.pieces = src.model === "llama" && !bytes.every((b) => b) ? pieces : undefined;
  }

  /** Whether every text is covered (a byte-fallback or byte-level vocabulary). */
  get complete(): boolean {
    return this.pieces === undefined;
  }

  /** The first character of `text` the vocabulary cannot represent, or undefined. */
  firstUncovered(text: string): Uncovered | undefined {
    const pieces = this.pieces;
    if (pieces === undefined) return undefined;
    for (let i = 0; i < text.length; ) {
      const cp = text.codePointAt(i)!;
      const char = String.fromCodePoint(cp);
      const width = cp > 0xffff ? 2 : 1;
      if (!this.covers(char === " " ? SPACE_MARK : char, pieces)) {
        return { char: text.slice(i, i + width), codePoint: codePointName(cp), offset: i };
      }
      i += width;
    }
    return undefined;
  }

  private covers(char: string, pieces: ReadonlySet<string>): boolean {
    if (pieces.has(char)) return true;
    // A lone surrogate has no UTF-8 form; Node sends it as U+FFFD (EF BF BD).
    for (const b of Buffer.from(char, "utf8")) if (!this.bytes[b]) return false;
    return true;
  }

  /** A lower bound of the tokens `text` takes (BOS not counted). */
  minTokens(text: string): number {
    return Math.ceil(Buffer.byteLength(text, "utf8") / this.longestTokenBytes);
  }

  /**
   * Refuses text the model cannot take: 400 `context_length_exceeded` when its byte length alone
   * proves it cannot fit `contextSize` tokens, 400 `unsupported_characters` naming the first
   * character the vocabulary lacks. `where` names the text in messages ("prompt", "messages[1].content").
   */
  check(text: string, contextSize: number, where: string, param: string): void {
    const min = this.minTokens(text);
    if (min > contextSize) {
      throw new ServingError(
        "context_length_exceeded",
        `${where} is ${Buffer.byteLength(text, "utf8")} bytes, at least ${min} tokens (the longest token is ${this.longestTokenBytes} bytes); the context holds ${contextSize}`,
        { param, details: { min_tokens: min, context_tokens: contextSize } },
      );
    }
    const bad = this.firstUncovered(text);
    if (bad !== undefined) {
      throw new ServingError(
        "unsupported_characters",
        `${where} holds ${bad.codePoint} at offset ${bad.offset}, which the model's vocabulary cannot represent (it has no byte-fallback tokens)`,
        { param, details: { character: bad.codePoint, offset: bad.offset } },
      );
    }
  }
}

export function codePointName(cp: number): string {
  return `U+${cp.toString(16).toUpperCase().padStart(4, "0")}`;
}

/** The vocabulary part of a GGUF's (nested) metadata, as node-llama-cpp reads it; undefined if absent. */
export function vocabularyFromMetadata(metadata: unknown): VocabularySource | undefined {
  const ggml = (metadata as { tokenizer?: { ggml?: Record<string, unknown> } } | undefined)?.tokenizer?.ggml;
  if (ggml === undefined || !Array.isArray(ggml.tokens)) return undefined;
  return {
    model: typeof ggml.model === "string" ? ggml.model : "",
    tokens: ggml.tokens as string[],
    ...(Array.isArray(ggml.token_type) ? { types: ggml.token_type as number[] } : {}),
  };
}
