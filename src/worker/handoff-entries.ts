import type { Engine } from "../engine/engine.js";
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
    const entry: HandoffEntry = { conversation_id: k.conversationId ?? null, tokens: [...tokens], blocks: [...k.blocks] };
    const state = states[i];
    if (state === undefined || identity === undefined) return entry;
    const b64 = encodeStateFile(k.conversationId ?? `anon-${k.id}`, identity, state, k.blocks).toString("base64");
    // The adopt body carries the tokens as JSON too (up to 11 bytes each) and the block keys.
    const body = b64.length + tokens.length * 11 + k.blocks.length * 24 + 1024;
    if (body > maxBodyBytes || b64.length > budget) return entry;
    budget -= b64.length;
    return { ...entry, kv_state: b64 };
  });
}
