import { createHash } from "node:crypto";
import type { SequenceState } from "../engine/engine.js";

/**
 * The byte format of one saved sequence state (a disk tier file, a KV transfer between workers):
 *
 *   8 bytes  magic "IEKVST01"
 *   4 bytes  header length H (uint32 LE)
 *   H bytes  header, JSON: { key, identity, tokens, stateBytes, sha256, blocks }
 *   4·tokens token ids (int32 LE)
 *   stateBytes  llama.cpp's per-sequence state
 *
 * `sha256` covers the token ids and the state. decodeStateFile refuses anything that is not
 * exactly this (short, long, another identity, a checksum mismatch) with the reason: a bad or
 * foreign file is discarded, never handed to llama.cpp.
 */
export const KV_STATE_MAGIC = Buffer.from("IEKVST01", "latin1");
/** A header is a few hundred bytes plus block keys; more is not a file of ours. */
const MAX_HEADER_BYTES = 1 << 20;

export interface KvStateHeader {
  /** The conversation the state belongs to. */
  key: string;
  /** EngineInfo.kvStateIdentity of the engine that saved it. */
  identity: string;
  tokens: number;
  stateBytes: number;
  sha256: string;
  /** Block keys of the conversation's canonical text (prefix-blocks.ts), for cache events. */
  blocks: string[];
}

export interface DecodedState {
  header: KvStateHeader;
  state: SequenceState;
}

function checksum(tokens: Buffer, state: Uint8Array): string {
  return createHash("sha256").update(tokens).update(state).digest("hex");
}

export function encodeStateFile(key: string, identity: string, state: SequenceState, blocks: readonly string[]): Buffer {
  const tokens = Buffer.from(Int32Array.from(state.tokens).buffer);
  const header: KvStateHeader = {
    key, identity, tokens: state.tokens.length, stateBytes: state.bytes.byteLength, sha256: checksum(tokens, state.bytes), blocks: [...blocks],
  };
  const json = Buffer.from(JSON.stringify(header), "utf8");
  const len = Buffer.alloc(4);
  len.writeUInt32LE(json.length, 0);
  return Buffer.concat([KV_STATE_MAGIC, len, json, tokens, state.bytes]);
}

export class KvStateFileError extends Error {}

/** The header alone (a disk index rebuild reads no more); throws KvStateFileError. */
export function decodeStateHeader(head: Buffer, identity: string): { header: KvStateHeader; bodyOffset: number } {
  if (head.length < 12 || !head.subarray(0, 8).equals(KV_STATE_MAGIC)) throw new KvStateFileError("not a KV state file");
  const h = head.readUInt32LE(8);
  if (h === 0 || h > MAX_HEADER_BYTES || head.length < 12 + h) throw new KvStateFileError("truncated header");
  let header: KvStateHeader;
  try {
    header = JSON.parse(head.subarray(12, 12 + h).toString("utf8")) as KvStateHeader;
  } catch {
    throw new KvStateFileError("header is not JSON");
  }
  if (typeof header.key !== "string" || typeof header.identity !== "string" || typeof header.sha256 !== "string" ||
    !Number.isInteger(header.tokens) || header.tokens <= 0 || !Number.isInteger(header.stateBytes) || header.stateBytes <= 0 ||
    !Array.isArray(header.blocks)) {
    throw new KvStateFileError("malformed header");
  }
  if (header.identity !== identity) throw new KvStateFileError("saved by another model, engine build or context layout");
  return { header, bodyOffset: 12 + h };
}

/** The whole file, checked; throws KvStateFileError. */
export function decodeStateFile(file: Buffer, identity: string): DecodedState {
  const { header, bodyOffset } = decodeStateHeader(file, identity);
  const expected = bodyOffset + header.tokens * 4 + header.stateBytes;
  if (file.length !== expected) throw new KvStateFileError(file.length < expected ? "truncated" : "trailing bytes");
  const tokenBytes = file.subarray(bodyOffset, bodyOffset + header.tokens * 4);
  const bytes = file.subarray(bodyOffset + header.tokens * 4);
  if (checksum(tokenBytes, bytes) !== header.sha256) throw new KvStateFileError("checksum mismatch");
  const tokens: number[] = new Array<number>(header.tokens);
  for (let i = 0; i < header.tokens; i++) tokens[i] = tokenBytes.readInt32LE(i * 4);
  return { header, state: { bytes: new Uint8Array(bytes), tokens } };
}
