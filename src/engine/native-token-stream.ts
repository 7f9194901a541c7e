import type { GeneratedToken, TokenLogprobs } from "./engine.js";

/**
 * The tokens of one native generation, as an async iterator for the decode pump. The native loop
 * may run `credit` tokens ahead of the consumer; each token the consumer takes earns the credit
 * back (granted in steps of `grantStep`, one native call per step), so a consumer that stops pulling
 * stops its sequence within `credit` tokens while the other sequences keep their pace.
 *
 * The consumer leaving (`return()`, abort) cancels the native generation; the native side answers
 * every generation with exactly one end event, which `finish` receives.
 */
export interface TokenStreamHooks {
  /** Starts the native generation; called on the first `next()`. */
  begin(): void | Promise<void>;
  grant(tokens: number): void;
  cancel(): void;
}

type Waiter = { resolve: (r: IteratorResult<GeneratedToken>) => void; reject: (err: Error) => void };

const DONE: IteratorResult<GeneratedToken> = { done: true, value: undefined };

export class TokenStream implements AsyncIterableIterator<GeneratedToken> {
  /** Ids of the tokens generated, in order (the sequence's held tokens are rebuilt from them). */
  readonly ids: number[] = [];
  private readonly queue: GeneratedToken[] = [];
  private head = 0;
  private started = false;
  private finished = false;
  private closed = false;
  private failure: Error | undefined;
  private waiter: Waiter | undefined;
  private ungranted = 0;
  private readonly onAbort = () => this.close();

  constructor(
    private readonly hooks: TokenStreamHooks,
    private readonly signal: AbortSignal,
    private readonly grantStep: number,
  ) {}

  [Symbol.asyncIterator](): this {
    return this;
  }

  next(): Promise<IteratorResult<GeneratedToken>> {
    if (!this.started) return this.start();
    if (this.closed) return Promise.resolve(DONE);
    if (this.head < this.queue.length) return Promise.resolve({ done: false, value: this.take() });
    if (this.failure !== undefined) return Promise.reject(this.failure);
    if (this.finished) return Promise.resolve(DONE);
    return new Promise((resolve, reject) => (this.waiter = { resolve, reject }));
  }

  return(): Promise<IteratorResult<GeneratedToken>> {
    this.close();
    return Promise.resolve(DONE);
  }

  /** A token from the native loop. */
  push(id: number, text: string, logprobs?: TokenLogprobs): void {
    this.ids.push(id);
    if (this.closed) return;
    const token: GeneratedToken = logprobs === undefined ? { id, text } : { id, text, logprobs };
    const w = this.waiter;
    if (w !== undefined && this.head === this.queue.length) {
      this.waiter = undefined;
      this.credit();
      w.resolve({ done: false, value: token });
      return;
    }
    this.queue.push(token);
  }

  /** The native generation ended (after its last token, if any). */
  finish(error: Error | undefined): void {
    this.finished = true;
    this.failure = error;
    this.signal.removeEventListener("abort", this.onAbort);
    const w = this.waiter;
    if (w === undefined || this.head < this.queue.length) return;
    this.waiter = undefined;
    if (error !== undefined && !this.closed) w.reject(error);
    else w.resolve(DONE);
  }

  private start(): Promise<IteratorResult<GeneratedToken>> {
    this.started = true;
    if (this.signal.aborted) {
      this.closed = true;
      return Promise.resolve(DONE);
    }
    this.signal.addEventListener("abort", this.onAbort, { once: true });
    try {
      const begun = this.hooks.begin();
      if (begun !== undefined) return begun.then(() => this.next(), (err: Error) => this.fail(err));
    } catch (err) {
      return this.fail(err as Error);
    }
    return this.next();
  }

  private fail(err: Error): Promise<IteratorResult<GeneratedToken>> {
    // Never begun: there is no native generation to wait for.
    this.finished = true;
    this.closed = true;
    this.signal.removeEventListener("abort", this.onAbort);
    return Promise.reject(err);
  }

  private take(): GeneratedToken {
    const token = this.queue[this.head++]!;
    if (this.head === this.queue.length) {
      this.queue.length = 0;
      this.head = 0;
    }
    this.credit();
    return token;
  }

  private credit(): void {
    if (++this.ungranted < this.grantStep) return;
    this.hooks.grant(this.ungranted);
    this.ungranted = 0;
  }

  private close(): void {
    if (this.closed) return;
    this.closed = true;
    this.queue.length = 0;
    this.head = 0;
    if (!this.finished && this.started) this.hooks.cancel();
    const w = this.waiter;
    this.waiter = undefined;
    w?.resolve(DONE);
  }
}
