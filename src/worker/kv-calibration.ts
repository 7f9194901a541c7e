import { mkdtempSync, rmSync, writeFileSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Clock } from "../common/clock.js";
import type { Engine } from "../engine/engine.js";
import { decodeStateFile, encodeStateFile } from "./kv-state-file.js";
import type { KvCosts } from "./kv-restore-rule.js";
import { restoreWhenIdle, saveWhenIdle } from "./save-when-idle.js";

/**
 * Measures, once at worker start, what the restore rule (kv-restore-rule.ts) needs: prefill ms per
 * token, and restore ms per token from each tier, on this machine, model and context. One idle
 * sequence prefills `tokens` tokens, saves its state and restores it (host); the disk figure adds
 * writing, reading and checking the file in the disk tier's folder (the system's temp folder when
 * there is none). The best of `rounds` is kept for each (the first run pays warm-up).
 */
export interface Calibration extends KvCosts {
  tokens: number;
  stateBytes: number;
}

export async function calibrateKvCosts(engine: Engine, clock: Clock, diskDir: string | undefined, tokens = 256, rounds = 3): Promise<Calibration | undefined> {
  const seq = engine.sequences[0];
  const identity = engine.info.kvStateIdentity;
  if (seq?.saveState === undefined || seq.restoreState === undefined || identity === undefined) return undefined;
  const n = Math.max(16, Math.min(tokens, engine.info.contextSize - 1));
  const base = engine.tokenize("Once upon a time, there was a little girl who liked to walk in the park with her dog. ");
  const prompt: number[] = [];
  while (prompt.length < n) prompt.push(...base.slice(prompt.length === 0 ? 0 : 1));
  prompt.length = n;
  const dir = mkdtempSync(join(diskDir ?? tmpdir(), ".calibrate-"));
  let prefill = Infinity;
  let host = Infinity;
  let disk = Infinity;
  let stateBytes = 0;
  try {
    for (let r = 0; r < rounds; r++) {
      await seq.clear();
      let t = clock.now();
      await seq.prefill(prompt, new AbortController().signal);
      prefill = Math.min(prefill, (clock.now() - t) / n);
      const state = await saveWhenIdle(seq, prompt, 5_000);
      if (state === undefined) return undefined;
      stateBytes = state.bytes.byteLength;
      await seq.clear();
      t = clock.now();
      if (!(await restoreWhenIdle(seq, state, () => true, 5_000))) return undefined;
      host = Math.min(host, (clock.now() - t) / state.tokens.length);
      await seq.clear();
      // Writes happen off the restore path (after eviction): only reading and checking count.
      const file = join(dir, "state.kvs");
      writeFileSync(file, encodeStateFile("calibration", identity, state, []));
      t = clock.now();
      const back = decodeStateFile(readFileSync(file), identity);
      if (!(await restoreWhenIdle(seq, back.state, () => true, 5_000))) return undefined;
      disk = Math.min(disk, (clock.now() - t) / state.tokens.length);
    }
  } finally {
    await seq.clear();
    rmSync(dir, { recursive: true, force: true });
  }
  return { tokens: n, stateBytes, prefillMsPerToken: prefill, restoreMsPerToken: { host, disk } };
}
