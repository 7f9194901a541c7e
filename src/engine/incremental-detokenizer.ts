/**
 * Turns a stream of token ids into text pieces without breaking multi-byte characters: a token that
 * ends inside a UTF-8 sequence (detokenized as U+FFFD) is held until the character completes, at
 * most `MAX_HELD` tokens. The last few emitted tokens are passed as context, so tokenizers that
 * drop a leading space at the start of text (SentencePiece) keep it mid-stream.
 */
const MAX_HELD = 4;
const CONTEXT_TOKENS = 4;

export type Detokenize = (tokens: readonly number[], context: readonly number[]) => string;

export class IncrementalDetokenizer {
  private held: number[] = [];
  private context: number[];

  constructor(private readonly detokenize: Detokenize, initialContext: readonly number[] = []) {
    this.context = initialContext.slice(-CONTEXT_TOKENS);
  }

  push(token: number): string {
    this.held.push(token);
    const text = this.detokenize(this.held, this.context);
    if (text.endsWith("\uFFFD") && this.held.length < MAX_HELD) return "";
    this.context = this.context.concat(this.held).slice(-CONTEXT_TOKENS);
    this.held = [];
    return text;
  }
}
