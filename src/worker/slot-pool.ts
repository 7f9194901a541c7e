/**
 * The engine's sequences as leases. `acquire` resolves with a free slot at once or waits in FIFO
 * order (the worker's waiting queue, like llama-server's slots or vLLM's waiting requests); an
 * aborted wait leaves the queue at once. A lease's `release()` is idempotent (STYLE rule 4).
 */
export interface SlotLease {
  readonly index: number;
  release(): void;
}

interface Waiter {
  resolve: (lease: SlotLease) => void;
  reject: (err: unknown) => void;
  signal: AbortSignal;
  onAbort: () => void;
}

export class SlotPool {
  private readonly free: number[];
  private readonly waiters: Waiter[] = [];

  constructor(readonly total: number) {
    this.free = Array.from({ length: total }, (_, i) => i);
  }

  get busy(): number {
    return this.total - this.free.length;
  }

  get waiting(): number {
    return this.waiters.length;
  }

  /** Prefers a free slot the caller ranks best (e.g. the one already holding a shared prefix). */
  acquire(signal: AbortSignal, rank?: (index: number) => number): Promise<SlotLease> {
    if (signal.aborted) return Promise.reject(signal.reason);
    if (this.free.length > 0 && this.waiters.length === 0) return Promise.resolve(this.take(rank));
    return new Promise<SlotLease>((resolve, reject) => {
      const waiter: Waiter = {
        resolve, reject, signal,
        onAbort: () => {
          const i = this.waiters.indexOf(waiter);
          if (i !== -1) this.waiters.splice(i, 1);
          reject(signal.reason);
        },
      };
      signal.addEventListener("abort", waiter.onAbort, { once: true });
      this.waiters.push(waiter);
    });
  }

  /** A free slot now, or undefined when none is free or others wait (never queues). */
  tryAcquire(rank?: (index: number) => number): SlotLease | undefined {
    return this.free.length > 0 && this.waiters.length === 0 ? this.take(rank) : undefined;
  }

  private take(rank?: (index: number) => number): SlotLease {
    let at = 0;
    if (rank !== undefined && this.free.length > 1) {
      let best = -Infinity;
      for (let i = 0; i < this.free.length; i++) {
        const r = rank(this.free[i]!);
        if (r > best) [best, at] = [r, i];
      }
    }
    const index = this.free.splice(at, 1)[0]!;
    let released = false;
    return {
      index,
      release: () => {
        if (released) return;
        released = true;
        this.giveBack(index);
      },
    };
  }

  private giveBack(index: number): void {
    this.free.push(index);
    const next = this.waiters.shift();
    if (next === undefined) return;
    next.signal.removeEventListener("abort", next.onAbort);
    next.resolve(this.take());
  }
}
