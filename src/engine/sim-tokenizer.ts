/**
 * The simulated engine's tokenizer and vocabulary: no model, yet deterministic and prefix-stable.
 * A prompt is BOS followed by one token per 4 bytes of UTF-8 (close to real tokenizers' ~4
 * characters per token on English), each the FNV-1a hash of its bytes folded into the vocabulary.
 * Generated token `id` reads as the 4-character word WORDS[id mod WORDS.length].
 */
export const SIM_VOCAB_SIZE = 32_000;
export const SIM_BOS = 1;
export const SIM_EOS = 2;
/** Ids below this are special tokens, never produced by text. */
const FIRST_TEXT_TOKEN = 3;
const BYTES_PER_TOKEN = 4;

const WORDS = (
  "the cat dog sun sky day one two red big run fly saw had was and for not but you " +
  "all new old hot toy box car boy mom dad sea owl bee hen fox pig cow ant elf joy"
).split(" ").map((w) => ` ${w}`);

export function fnv1a(bytes: Uint8Array, start = 0, end = bytes.length, h = 0x811c9dc5): number {
  for (let i = start; i < end; i++) h = Math.imul(h ^ bytes[i]!, 0x01000193) >>> 0;
  return h;
}

export function simTokenize(text: string): number[] {
  const bytes = Buffer.from(text, "utf8");
  const out = [SIM_BOS];
  for (let i = 0; i < bytes.length; i += BYTES_PER_TOKEN) {
    out.push(FIRST_TEXT_TOKEN + (fnv1a(bytes, i, Math.min(bytes.length, i + BYTES_PER_TOKEN)) % (SIM_VOCAB_SIZE - FIRST_TEXT_TOKEN)));
  }
  return out;
}

/** A text token id from a uniform draw u in [0, 1). */
export function simTokenFromDraw(u: number): number {
  return FIRST_TEXT_TOKEN + Math.floor(u * (SIM_VOCAB_SIZE - FIRST_TEXT_TOKEN));
}

export function simTokenText(id: number): string {
  return id < FIRST_TEXT_TOKEN ? "" : WORDS[id % WORDS.length]!;
}

/** Hash of a token sequence, to seed each stream's own random numbers from what it continues. */
export function hashTokens(tokens: readonly number[], seed: number): number {
  let h = (0x811c9dc5 ^ seed) >>> 0;
  for (const t of tokens) {
    h = Math.imul(h ^ (t & 0xffff), 0x01000193) >>> 0;
    h = Math.imul(h ^ (t >>> 16), 0x01000193) >>> 0;
  }
  return h;
}
