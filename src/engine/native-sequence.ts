import { ServingError } from "../common/serving-error.js";
import type { EngineSequence, GenerateOptions, GeneratedToken, PrefillResult } from "./engine.js";
import { DoneReason, PrefillStatus, type NativeEngineHandle, type NativeSampling } from "./native-binding.js";
import { TokenStream } from "./native-token-stream.js";

/**
 * One sequence of the native engine. Its operations are commands to the native decode loop; their
 * answers come back as events, in the order the commands were given, so each kind of pending
 * operation is a FIFO. The native side answers every prefill with one `Prefilled`, every generation
 * with one `Done` and every clear with one `Cleared` event, and reports how many tokens the
 * sequence holds after each, from which `heldTokens()` is kept.
 */
export interface SequenceHost {
  readonly handle: NativeEngineHandle;
  /** Resolves the request's sampling (a JSON schema becomes GBNF, possibly asynchronously). */
  samplingFor(opts: GenerateOptions): NativeSampling | Promise<NativeSampling>;
  /** Tokens the native loop may run ahead of a consumer. */
  readonly credit: number;
}

interface PendingPrefill {
  target: number[];
  last: number;
  total: number;
  resolve: (r: PrefillResult) => void;
  reject: (err: Error) => void;
  settled: () => void;
}

interface PendingGeneration {
  stream: TokenStream;
  /** What the sequence held before, plus the token the generation starts from. */
  base: number[];
}

export class NativeSequence implements EngineSequence {
  private held: number[] = [];
  /** The prompt's final token, held back by prefill() for the first decode step. */
  private lastPromptToken: number | undefined;
  private readonly prefills: PendingPrefill[] = [];
  private readonly generations: PendingGeneration[] = [];
  private readonly clears: (() => void)[] = [];

  constructor(private readonly host: SequenceHost, readonly index: number) {}

  heldTokens(): readonly number[] {
    return this.held;
  }

  prefill(tokens: readonly number[], signal: AbortSignal): Promise<PrefillResult> {
    if (tokens.length === 0) return Promise.reject(new ServingError("internal", "empty prompt"));
    if (signal.aborted) return Promise.reject(new ServingError("internal", "prefill aborted"));
    const target = tokens.slice(0, -1);
    return new Promise((resolve, reject) => {
      const onAbort = () => this.host.handle.cancel(this.index);
      signal.addEventListener("abort", onAbort, { once: true });
      this.prefills.push({
        target, last: tokens[tokens.length - 1]!, total: tokens.length, resolve, reject,
        settled: () => signal.removeEventListener("abort", onAbort),
      });
      this.host.handle.prefill(this.index, Int32Array.from(target));
    });
  }

  generate(opts: GenerateOptions): AsyncIterable<GeneratedToken> {
    const first = this.lastPromptToken;
    if (first === undefined) throw new Error("generate() before prefill()");
    this.lastPromptToken = undefined;
    const { handle, credit } = this.host;
    const launch = (sampling: NativeSampling) => {
      handle.generate(this.index, first, sampling, opts.maxTokens, credit);
      this.generations.push({ stream, base: [...this.held, first] });
    };
    const stream = new TokenStream(
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
    this.lastPromptToken = undefined;
    return new Promise((resolve) => {
      this.clears.push(resolve);
      this.host.handle.clear(this.index);
    });
  }

  onToken(id: number, text: string): void {
    this.generations[0]?.stream.push(id, text);
  }

  onDone(reason: DoneReason, heldCount: number): void {
    const g = this.generations.shift();
    if (g === undefined) return;
    this.held = [...g.base, ...g.stream.ids].slice(0, heldCount);
    g.stream.finish(reason === DoneReason.Error ? new Error("llama.cpp decode failed") : undefined);
  }

  onPrefilled(status: PrefillStatus, heldCount: number, reused: number): void {
    const p = this.prefills.shift();
    if (p === undefined) return;
    p.settled();
    this.held = p.target.slice(0, heldCount);
    if (status === PrefillStatus.Ok) {
      this.lastPromptToken = p.last;
      // The final prompt token counts as reused only when the whole prompt was already held.
      p.resolve({ evaluated: p.total - reused, reused });
    } else {
      p.reject(new ServingError("internal", status === PrefillStatus.Cancelled ? "prefill aborted" : "prefill failed"));
    }
  }

  onCleared(): void {
    this.held = [];
    this.clears.shift()?.();
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
  }
}
