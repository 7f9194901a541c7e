/**
 * Batches the relays' writes: every relay that received tokens during one event-loop turn is
 * flushed by one setImmediate (instead of one per stream per turn, which at hundreds of streams
 * was a measurable share of the coordinator's CPU). One batch per pipeline, so that no state
 * lives at module level; a relay given none gets its own.
 */
export class FlushBatch {
  private queue: (() => void)[] = [];
  private scheduled = false;

  schedule(flush: () => void): void {
    this.queue.push(flush);
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(this.run);
  }

  private readonly run = (): void => {
    this.scheduled = false;
    const q = this.queue;
    this.queue = [];
    for (const f of q) f();
  };
}
