import type { ChatMessage } from "./chat.js";

/**
 * Keys of the prefix cache, computed alike by a worker (for what its KV cache holds) and by a
 * coordinator (for what a request needs), neither needing the other's tokenizer.
 *
 * The unit is a block of BLOCK_CHARS characters (UTF-16 code units) of a request's canonical text,
 * not a block of tokens: the coordinator loads no tokenizer, and token ids differ per model and
 * chat template. The canonical text is what the client sent, in the order the worker renders it:
 * a text prompt as is; chat messages as role and content, each closed by a separator, so that a
 * conversation's history is a prefix of its next turn's. What a worker keeps after a turn is the
 * prompt followed by the text it generated (as an open assistant message for chat), which is how
 * the client sends it back.
 *
 * Block i's key is a 64-bit hash (two 32-bit lanes, hex) of the whole text up to the end of block i:
 * a chain, so holding key i means holding the whole prefix through block i. Only complete blocks
 * get keys; a text shorter than one block has none. Keys are hints for routing: a collision can
 * only misplace a request, never change its output, since the worker reuses KV by comparing tokens.
 */
export const BLOCK_CHARS = 64;
/** Keys one cached sequence publishes at most: 128 Ki characters (about 32–90 Ki tokens). */
export const MAX_BLOCKS_PER_SEQUENCE = 2048;
/** A block key: 16 lowercase hex digits. */
export const BLOCK_KEY_RE = /^[0-9a-f]{16}$/;

/** What a request asks the model to continue: a text prompt or chat messages. */
export type PromptInput = { readonly prompt: string } | { readonly messages: readonly ChatMessage[] };

// Separators no client text is expected to carry; a text that does only shifts its own blocks.
const TEXT_MARK = "\u0002";
const CHAT_MARK = "\u0003";
const FIELD_END = "\u001f";
const MESSAGE_END = "\u001e";

/** The canonical text of a request's input. */
export function canonicalText(input: PromptInput): string {
  if ("prompt" in input) return TEXT_MARK + input.prompt;
  let s = CHAT_MARK;
  for (const m of input.messages) s += m.role + FIELD_END + m.content + MESSAGE_END;
  return s;
}

/** The canonical text of a sequence after generation: the input, then the generated text. */
export function canonicalWithOutput(input: PromptInput, output: string): string {
  return "prompt" in input ? canonicalText(input) + output : canonicalText(input) + "assistant" + FIELD_END + output;
}

/** Number of complete blocks of a text (capped at MAX_BLOCKS_PER_SEQUENCE). */
export function blockCount(text: string): number {
  return Math.min(Math.floor(text.length / BLOCK_CHARS), MAX_BLOCKS_PER_SEQUENCE);
}

/**
 * The block keys of a text, lazily: a caller that stops at the first key nobody holds hashes only
 * the matched prefix and one block more.
 */
export function* blockKeys(text: string): Generator<string, void, undefined> {
  const n = blockCount(text);
  // Lane a: FNV-1a; lane b: a multiply-xorshift of another seed. Both run over the whole prefix.
  let a = 0x811c9dc5;
  let b = 0x9747b28c;
  for (let block = 0; block < n; block++) {
    const end = (block + 1) * BLOCK_CHARS;
    for (let i = block * BLOCK_CHARS; i < end; i++) {
      const c = text.charCodeAt(i);
      a = Math.imul(a ^ c, 0x01000193);
      b = Math.imul(b ^ c, 0x5bd1e995);
      b ^= b >>> 13;
    }
    yield hex8(finish(a, 0x85ebca6b)) + hex8(finish(b ^ block, 0xc2b2ae35));
  }
}

/** All block keys of a text. */
export function blockKeyList(text: string): string[] {
  return [...blockKeys(text)];
}

/** A finaliser so that nearby states spread over all 32 bits (the running state is untouched). */
function finish(h: number, m: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, m);
  h ^= h >>> 13;
  h = Math.imul(h, 0x27d4eb2f);
  h ^= h >>> 16;
  return h >>> 0;
}

function hex8(x: number): string {
  return x.toString(16).padStart(8, "0");
}
