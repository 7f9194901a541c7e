/**
 * A single-producer, single-consumer queue with a fixed capacity. `push` resolves at once while
 * there is room and waits while the channel is full, so a producer that awaits it runs no faster
 * than its consumer (backpressure). `close` ends the stream for the consumer after the items already
 * queued; `abort` drops them and wakes a waiting producer with `false`.
 */
export class BoundedChannel<T> {
  private readonly items: T[] = [];
  private closed = false;
  private aborted = false;
  private waitingProducer: (() => void) | null = null;
  private waitingConsumer: (() => void) | null = null;

  constructor(readonly capacity: number) {
    if (!Number.isInteger(capacity) || capacity < 1) throw new RangeError("capacity must be a positive integer");
  }

  get size(): number {
    return this.items.length;
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /** Resolves true once the item is queued, false if the channel was aborted or closed. */
  async push(item: T): Promise<boolean> {
    while (this.size >= this.capacity && !this.aborted && !this.closed) {
      await new Promise<void>((resolve) => (this.waitingProducer = resolve));
    }
    if (this.aborted || this.closed) return false;
    this.items.push(item);
    this.wakeConsumer();
    return true;
  }

  /** Takes everything queued now (possibly nothing), without waiting. */
  drain(): T[] {
    if (this.size === 0) return [];
    const out = this.items.splice(0);
    this.wakeProducer();
    return out;
  }

  /** Waits until an item is queued or the channel ends; false means it ended with nothing queued. */
  async waitReadable(): Promise<boolean> {
    while (this.size === 0 && !this.closed && !this.aborted) {
      await new Promise<void>((resolve) => (this.waitingConsumer = resolve));
    }
    return this.size > 0 && !this.aborted;
  }

  close(): void {
    this.closed = true;
    this.wakeConsumer();
    this.wakeProducer();
  }

  abort(): void {
    this.aborted = true;
    this.items.length = 0;
    this.close();
  }

  async *[Symbol.asyncIterator](): AsyncIterator<T> {
    while (await this.waitReadable()) {
      for (const item of this.drain()) yield item;
    }
  }

  private wakeProducer(): void {
    const w = this.waitingProducer;
    this.waitingProducer = null;
    w?.();
  }

  private wakeConsumer(): void {
    const w = this.waitingConsumer;
    this.waitingConsumer = null;
    w?.();
  }
}
