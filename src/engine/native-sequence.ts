import { ServingError } from "../protocol/serving-error.js";
import type { EngineSequence, GenerateOptions, GeneratedToken, PrefillResult, SequenceState, TokenLogprobs } from "./engine.js";
import { DoneReason, PrefillStatus, type NativeEngineHandle, type NativeSampling } from "./native-binding.js";
import { grammarDeadEnd, nativeErrorToServing } from "./native-errors.js";
import { TokenStream } from "./native-token-stream.js";

/**
 * One sequence of the native engine. Its operations are commands to the native decode loop; their
 * answers come back as events, in the order the commands were given, so each kind of pending
 * operation is a FIFO. The native side answers every prefill with one `Prefilled`, every generation
 * with one `Done` and every clear with one `Cleared` event, and reports how many tokens the
 * sequence holds after each, from which `heldTokens()` is kept. Unlike the node-llama-cpp engine,
 * a prefill evaluates the prompt's last token too (keeping its logits), so a generation's first
 * token costs no decode step of its own.
 */
export interface SequenceHost {
  readonly handle: NativeEngineHandle;
  /** Resolves the request's sampling (a JSON schema becomes GBNF, possibly asynchronously). */
  samplingFor(opts: GenerateOptions): NativeSampling | Promise<NativeSampling>;
  /** Tokens the native loop may run ahead of a consumer. */
  readonly credit: number;
}

interface PendingPrefill {
  tokens: number[];
  resolve: (r: PrefillResult) => void;
  reject: (err: Error) => void;
  settled: () => void;
}

interface PendingGeneration {
  stream: TokenStream;
  /** What the sequence held when the generation began. */
  base: readonly number[];
}

export class NativeSequence implements EngineSequence {
  private held: readonly number[] = [];
  /** A prefill completed and no generation consumed its logits yet. */
  private prefilled = false;
  private readonly prefills: PendingPrefill[] = [];
  private readonly generations: PendingGeneration[] = [];
  private readonly clears: (() => void)[] = [];
  private readonly idleWaiters: (() => void)[] = [];
  /**
   * Counts commands given (prefill, generate, clear): a restore's answer, settled after the events
   * of the batch it came with, leaves `held` to the events of any command given after it.
   */
  private commandsGiven = 0;

  constructor(private readonly host: SequenceHost, readonly index: number) {}

  heldTokens(): readonly number[] {
    return this.held;
  }

  prefill(tokens: readonly number[], signal: AbortSignal): Promise<PrefillResult> {
    if (tokens.length === 0) return Promise.reject(new ServingError("internal", "empty prompt"));
    if (signal.aborted) return Promise.reject(new ServingError("internal", "prefill aborted"));
    this.prefilled = false;
    return new Promise((resolve, reject) => {
      const onAbort = () => this.host.handle.cancel(this.index);
      signal.addEventListener("abort", onAbort, { once: true });
      this.prefills.push({ tokens: [...tokens], resolve, reject, settled: () => signal.removeEventListener("abort", onAbort) });
      this.commandsGiven++;
      this.host.handle.prefill(this.index, Int32Array.from(tokens));
    });
  }

  generate(opts: GenerateOptions): AsyncIterable<GeneratedToken> {
    if (!this.prefilled) throw new Error("generate() before prefill()");
    this.prefilled = false;
    const { handle, credit } = this.host;
    const launch = (sampling: NativeSampling): void => {
      if (opts.maxTokens <= 0) return stream.finish(undefined);
      let first: ReturnType<NativeEngineHandle["generate"]>;
      try {
        first = handle.generate(this.index, sampling, opts.maxTokens, credit);
      } catch (err) {
        // Thrown before anything was generated: the sampler did not build or no token is allowed.
        throw nativeErrorToServing(err);
      }
      if (!first.end) stream.push(first.token, first.text, first.logprobs);
      // Nothing more comes from the native side when the first token already ended it.
      if (first.end || opts.maxTokens === 1) return stream.finish(undefined);
      this.generations.push({ stream, base: this.held });
      this.commandsGiven++;
    };
    const stream: TokenStream = new TokenStream(
      {
        begin: () => {
          const sampling = this.host.samplingFor(opts);
          if (sampling instanceof Promise) return sampling.then(launch);
          launch(sampling);
        },
        grant: (n) => handle.grant(this.index, n),
        cancel: () => handle.cancel(this.index),
      },
      opts.signal,
      Math.max(1, credit >> 1),
    );
    return stream;
  }

  clear(): Promise<void> {
    this.prefilled = false;
    return new Promise((resolve) => {
      this.clears.push(resolve);
      this.commandsGiven++;
      this.host.handle.clear(this.index);
    });
  }

  /** Only when nothing is pending on this side either: the native check sees only queued commands. */
  private idle(): boolean {
    return this.prefills.length === 0 && this.generations.length === 0 && this.clears.length === 0;
  }

  /**
   * Runs `fn` once no operation is pending on this side (at once when none is): a generation's last
   * events (its Done) can come a moment after its consumer saw the last token. Synchronously, so
   * that a save or restore is queued to the decode loop before any command given after it.
   */
  private onIdle(fn: () => void): void {
    if (this.idle()) fn();
    else this.idleWaiters.push(fn);
  }

  private wakeIdle(): void {
    if (this.idleWaiters.length === 0 || !this.idle()) return;
    for (const w of this.idleWaiters.splice(0)) w();
  }

  saveState(): Promise<SequenceState | undefined> {
    return new Promise((resolve, reject) => this.onIdle(() => {
      if (this.held.length === 0) return resolve(undefined);
      let answer: ReturnType<NativeEngineHandle["saveState"]>;
      try {
        answer = this.host.handle.saveState(this.index);
      } catch (err) {
        // e.g. the engine closed while this waited for the sequence to be idle
        return reject(nativeErrorToServing(err));
      }
      answer.then(
        (got) => resolve(got === undefined ? undefined : { bytes: got.bytes, tokens: Array.from(got.tokens) }),
        (err: unknown) => reject(nativeErrorToServing(err)),
      );
    }));
  }

  restoreState(state: SequenceState): Promise<boolean> {
    return new Promise((resolve, reject) => this.onIdle(() => {
      this.prefilled = false;
      const given = this.commandsGiven;
      let answer: Promise<number | undefined>;
      try {
        answer = this.host.handle.restoreState(this.index, state.bytes, Int32Array.from(state.tokens));
      } catch (err) {
        return reject(nativeErrorToServing(err));
      }
      answer.then((rc) => {
        if (rc !== 0 && rc !== 1) return resolve(false); // busy, or the engine closed: what it holds is unchanged
        if (this.commandsGiven === given) this.held = rc === 1 ? [...state.tokens] : [];
        resolve(rc === 1);
      }, (err: unknown) => reject(nativeErrorToServing(err)));
    }));
  }

  onToken(id: number, text: string, logprobs?: TokenLogprobs): void {
    this.generations[0]?.stream.push(id, text, logprobs);
  }

  onDone(reason: DoneReason, heldCount: number): void {
    const g = this.generations.shift();
    if (g === undefined) return;
    this.held = [...g.base, ...g.stream.ids].slice(0, heldCount);
    g.stream.finish(
      reason === DoneReason.Error ? new ServingError("internal", "llama.cpp decode failed")
        : reason === DoneReason.DeadEnd ? grammarDeadEnd()
          : undefined,
    );
    this.wakeIdle();
  }

  onPrefilled(status: PrefillStatus, heldCount: number, reused: number): void {
    const p = this.prefills.shift();
    if (p === undefined) return;
    p.settled();
    this.held = p.tokens.slice(0, heldCount);
    if (status === PrefillStatus.Ok) {
      this.prefilled = true;
      // The last prompt token is always evaluated (its logits give the first sample).
      p.resolve({ evaluated: p.tokens.length - reused, reused });
    } else {
      p.reject(new ServingError("internal", status === PrefillStatus.Cancelled ? "prefill aborted" : "prefill failed"));
    }
    this.wakeIdle();
  }

  onCleared(): void {
    this.held = [];
    this.clears.shift()?.();
    this.wakeIdle();
  }

  /** The engine closed: nothing more will come from the native side. */
  abandon(): void {
    const closed = new ServingError("internal", "engine closed");
    for (const p of this.prefills.splice(0)) {
      p.settled();
      p.reject(closed);
    }
    for (const g of this.generations.splice(0)) g.stream.finish(closed);
    for (const c of this.clears.splice(0)) c();
    this.wakeIdle();
  }
}
