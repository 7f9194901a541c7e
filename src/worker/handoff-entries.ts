import type { Engine, SequenceState } from "../engine/engine.js";
import type { HandoffEntry } from "../protocol/worker-api.js";
import type { KeptSequence } from "./kept-sequences.js";
import { encodeStateFile } from "./kv-state-file.js";
import { saveWhenIdle } from "./save-when-idle.js";

/** KV states one drain listing carries at most (base64 bytes; the coordinator reads up to 64 MiB). */
const DRAIN_STATE_BUDGET_BYTES = 48 * 1024 * 1024;

/**
 * What a draining worker hands off, most recent first: each kept sequence's tokens and block keys,
 * and, when the engine can save its state, its KV bytes (a KV state file in base64: identity,
 * tokens, checksum) so that an adopter with the same engine identity restores instead of
 * prefilling. A state goes along only when the adopt body stays within `maxBodyBytes` (the
 * adopters' MAX_BODY_BYTES, taken to be this worker's) and the listing within its budget.
 */
export async function handoffEntries(
  engine: Engine, kept: readonly { kept: KeptSequence; tokens: readonly number[] }[], maxBodyBytes: number,
): Promise<HandoffEntry[]> {
  const identity = engine.info.kvStateIdentity;
  const list = kept.filter(({ tokens }) => tokens.length >= 2);
  const states = await Promise.all(list.map(({ kept: k, tokens }) =>
    identity === undefined ? undefined : saveWhenIdle(engine.sequences[k.slotIndex]!, tokens)));
  let budget = DRAIN_STATE_BUDGET_BYTES;
  return list.map(({ kept: k, tokens }, i) => {
    const state = states[i];
    const entry = transferEntry(k.conversationId ?? null, k.conversationId ?? `anon-${k.id}`, identity, tokens, k.blocks, state, maxBodyBytes, budget);
    if (entry.kv_state !== undefined) budget -= entry.kv_state.length;
    return entry;
  });
}

/**
 * One sequence as the worker API transfers it (drain listings, `POST /worker/export`): its tokens,
 * block keys and, when there is a state and the adopt body fits `maxBodyBytes` (and the state
 * `budget`, base64 bytes), its KV state file in base64 named `key`.
 */
export function transferEntry(
  conversationId: string | null, key: string, identity: string | undefined, tokens: readonly number[], blocks: readonly string[],
  state: SequenceState | undefined, maxBodyBytes: number, budget = Infinity,
): HandoffEntry {
  const entry: HandoffEntry = { conversation_id: conversationId, tokens: [...tokens], blocks: [...blocks] };
  if (state === undefined || identity === undefined) return entry;
  const b64 = encodeStateFile(key, identity, state, blocks).toString("base64");
  // The adopt body carries the tokens as JSON too (up to 11 bytes each) and the block keys.
  const body = b64.length + tokens.length * 11 + blocks.length * 24 + 1024;
  if (body > maxBodyBytes || b64.length > budget) return entry;
  return { ...entry, kv_state: b64 };
}
