import type { Clock } from "../common/clock.js";
import { createRng, type Rng } from "../common/rng.js";
import { ServingError } from "../protocol/serving-error.js";
import type { Engine, EngineInfo, EngineSequence, GenerateOptions, GeneratedToken, PrefillResult } from "./engine.js";
import type { SimFaults, SimProcessHooks } from "./sim-faults.js";
import type { SimSleeper } from "./sim-sleeper.js";
import { interTokenMs, prefillMs, type SimTiming } from "./sim-timing.js";
import { SIM_VOCAB_SIZE, hashTokens, simTokenFromDraw, simTokenText, simTokenize } from "./sim-tokenizer.js";

/**
 * The simulated engine: the Engine interface with no model. Sequences hold real token lists, so
 * prefix reuse and KV accounting (kvBytesPerToken × held tokens) behave as with llama.cpp; time
 * follows the documented model of sim-timing.ts; faults follow sim-faults.ts. It never emits an
 * end-of-generation token: every stream runs to max_tokens unless cancelled.
 *
 * Determinism: a stream's tokens and jitter come from an Rng seeded by (seed, the tokens it
 * continues, sampling.seed), so the same prompt gets the same text and timing whatever runs
 * beside it; fault draws come from one engine Rng seeded by `seed`, in call order, so a sequential
 * run is reproducible exactly.
 */
export interface SimEngineOptions {
  modelId: string;
  contextSize: number;
  parallel: number;
  kvBytesPerToken: number;
  /** Pads each token's text to this many characters (0: the natural words). Models bulk streams. */
  tokenChars: number;
  timing: SimTiming;
  faults: SimFaults;
  seed: number;
  clock: Clock;
  sleeper: SimSleeper;
  hooks: SimProcessHooks;
}

/** A token's text padded (or cut) to `chars` characters, keeping its word at the start. */
export function padTokenText(text: string, chars: number): string {
  return text.length >= chars ? text.slice(0, chars) : text + ".".repeat(chars - text.length);
}

/** Poisoned prompt hashes the sim remembers at most. */
const POISONED_MAX = 1024;

/** With no delay between tokens (bulk), still yield to the event loop every this many tokens. */
const BULK_YIELD_TOKENS = 16;

export function createSimEngine(o: SimEngineOptions): SimEngine {
  return new SimEngine(o);
}

export class SimEngine implements Engine {
  readonly info: EngineInfo;
  readonly sequences: SimSequence[];
  readonly rng: Rng;
  /** Sequences generating now: the batch size of the timing model. */
  decoding = 0;
  /** Tokens generated since start (the crash fault counts these). */
  generatedTotal = 0;
  private frozen = false;
  /** Hashes of tokenized prompts that carry the crash-on-prompt marker (bounded: cleared when large). */
  private readonly poisoned = new Set<number>();

  constructor(readonly o: SimEngineOptions) {
    this.info = {
      engine: "sim",
      modelId: o.modelId,
      modelPath: undefined,
      contextSize: o.contextSize,
      kvBytesPerToken: o.kvBytesPerToken,
      parallel: o.parallel,
      threads: 0,
      trainContextSize: o.contextSize,
      vocabSize: SIM_VOCAB_SIZE,
    };
    this.rng = createRng(o.seed);
    this.sequences = Array.from({ length: o.parallel }, (_, i) => new SimSequence(this, i));
  }

  tokenize(text: string): number[] {
    const tokens = simTokenize(text);
    const { crashOnPrompt, crashOnPromptAfterTokens } = this.o.faults;
    if (crashOnPrompt !== undefined && text.includes(crashOnPrompt)) {
      if (crashOnPromptAfterTokens < 0) {
        this.o.hooks.crash();
        throw new Error("simulated crash on a poison prompt");
      }
      if (this.poisoned.size >= POISONED_MAX) this.poisoned.clear();
      this.poisoned.add(hashTokens(tokens, 0));
    }
    return tokens;
  }

  /** Tokens after which a stream of this prompt crashes the process (-1: never). */
  crashPointOf(tokens: readonly number[]): number {
    if (this.poisoned.size === 0 || !this.poisoned.has(hashTokens(tokens, 0))) return -1;
    return this.o.faults.crashOnPromptAfterTokens;
  }

  /** A draw for a fault of probability p; draws nothing when the fault is off or certain. */
  chance(p: number): boolean {
    if (p <= 0) return false;
    if (p >= 1) return true;
    return this.rng.next() < p;
  }

  freezeOnce(): void {
    if (this.frozen) return;
    this.frozen = true;
    this.o.hooks.freeze();
  }

  /** Called before each token is produced: the crash fault fires once N tokens have left. */
  checkCrash(): void {
    const n = this.o.faults.crashAfterTokens;
    if (n > 0 && this.generatedTotal >= n) {
      this.o.hooks.crash();
      // Reached only where crash() returns (tests): the stream fails like a dead worker's.
      throw new Error(`simulated crash after ${n} tokens`);
    }
  }

  async close(): Promise<void> {}
}

class SimSequence implements EngineSequence {
  private held: number[] = [];
  /** The prompt's final token, held back by prefill() for the first decode step (as llama.cpp's). */
  private lastPromptToken: number | undefined;
  /** Tokens after which this sequence's stream crashes the process (-1: never; crash-on-prompt fault). */
  private crashAt = -1;

  constructor(private readonly engine: SimEngine, readonly index: number) {}

  heldTokens(): readonly number[] {
    return this.held;
  }

  async prefill(tokens: readonly number[], signal: AbortSignal): Promise<PrefillResult> {
    const { o } = this.engine;
    if (o.faults.hang === "process") this.engine.freezeOnce();
    if (o.faults.hang === "prefill") {
      await o.sleeper.sleep(Infinity, signal);
      throw new ServingError("internal", "prefill aborted");
    }
    if (this.engine.chance(o.faults.failPrefillProbability)) throw new ServingError("internal", "simulated prefill failure");
    this.crashAt = this.engine.crashPointOf(tokens);
    const target = tokens.slice(0, -1);
    let common = 0;
    while (common < this.held.length && common < target.length && this.held[common] === target[common]) common++;
    this.held.length = common;
    this.lastPromptToken = undefined;
    const evaluated = tokens.length - common;
    const u = o.timing.jitter > 0 ? createRng(hashTokens(tokens, o.seed)).next() : 0.5;
    await o.sleeper.sleep(prefillMs(o.timing, evaluated, u), signal);
    if (signal.aborted) throw new ServingError("internal", "prefill aborted");
    for (let i = common; i < target.length; i++) this.held.push(target[i]!);
    this.lastPromptToken = tokens[tokens.length - 1];
    return { evaluated, reused: common };
  }

  async *generate(opts: GenerateOptions): AsyncIterable<GeneratedToken> {
    const { engine } = this;
    const { o } = engine;
    const last = this.lastPromptToken;
    if (last === undefined) throw new Error("generate() before prefill()");
    this.lastPromptToken = undefined;
    this.held.push(last);
    const { signal } = opts;
    const f = o.faults;
    const stallAt = f.stallAfterTokens >= 0 && engine.chance(f.stallProbability) ? f.stallAfterTokens : -1;
    const rng = createRng(hashTokens(this.held, o.seed ^ (opts.sampling.seed ?? 0)));
    engine.decoding++;
    try {
      if (f.hang === "decode") {
        await o.sleeper.sleep(Infinity, signal);
        return;
      }
      let due = o.clock.now();
      let sinceYield = 0;
      for (let i = 0; i < opts.maxTokens; i++) {
        if (i === stallAt) {
          await o.sleeper.sleep(f.stallMs > 0 ? f.stallMs : Infinity, signal);
          due = o.clock.now();
        }
        if (signal.aborted) return;
        // Each token draws its content, then its jitter, from the stream's own Rng.
        const id = simTokenFromDraw(rng.next());
        due += interTokenMs(o.timing, engine.decoding, o.timing.jitter > 0 ? rng.next() : 0.5);
        const wait = due - o.clock.now();
        if (wait > 0) {
          sinceYield = 0;
          await o.sleeper.sleep(wait, signal);
        } else if (++sinceYield >= BULK_YIELD_TOKENS) {
          sinceYield = 0;
          await o.sleeper.sleep(0, signal);
        }
        if (signal.aborted) return;
        engine.checkCrash();
        if (i === this.crashAt) {
          o.hooks.crash();
          throw new Error(`simulated crash after ${i} tokens of a poison prompt`);
        }
        if (this.held.length >= o.contextSize) return;
        this.held.push(id);
        engine.generatedTotal++;
        yield { id, text: o.tokenChars > 0 ? padTokenText(simTokenText(id), o.tokenChars) : simTokenText(id) };
      }
    } finally {
      engine.decoding--;
    }
  }

  async clear(): Promise<void> {
    this.held = [];
    this.lastPromptToken = undefined;
  }
}
