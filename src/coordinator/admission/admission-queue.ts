import type { Clock } from "../../common/clock.js";
import { ServingError } from "../../protocol/serving-error.js";
import type { Timers } from "../../common/timers.js";
import { DrainRate } from "./drain-rate.js";

/**
 * Requests waiting for capacity, in order of priority (lower value first, like vLLM's `priority`),
 * then arrival. Bounded in size (`maxSize`; a full queue refuses with 429 and a Retry-After from the
 * observed drain rate) and in time (`timeoutMs`; a request still waiting then gets 503
 * `queue_timeout`). A client that goes away leaves at once (its AbortSignal).
 *
 * Protocol with the caller (inference-pipeline.ts), which alone knows what capacity means:
 *   ticket = queue.enqueue(…)            // may throw queue_full
 *   loop: await ticket.turn()            // resolves when the ticket is first in line and
 *                                        // capacity may have freed; rejects on timeout or abort
 *         if ticket.isFirst and capacity fits → ticket.leave() and claim it synchronously, else loop
 * Only the first in line is woken (`kick()`, on every release of capacity and every heartbeat), one
 * at a time: its check and its claim run before the next is woken, so capacity is never promised
 * twice and nobody overtakes the line. While the queue is not empty, new requests join it rather
 * than take capacity directly (the caller's fast path checks `size === 0`, O(1)).
 *
 * Waiters that asked for it hear their position at once and every `statusIntervalMs` (1 s) while
 * they wait (streaming clients get it as SSE comments, which also keep proxies from timing out).
 */
export interface AdmissionQueueOptions {
  maxSize: number;
  timeoutMs: number;
  clock: Clock;
  timers: Timers;
  statusIntervalMs?: number;
  drainWindowMs?: number;
}

export interface EnqueueOptions {
  priority: number;
  signal: AbortSignal;
  /** Position (1 = next) and queue size; at once and then every status interval. */
  onPosition?: (position: number, size: number) => void;
}

export interface QueueSnapshot {
  size: number;
  max_size: number;
  timeout_ms: number;
  drain_per_s: number;
  oldest_wait_ms: number;
  retry_after_s: number;
  /** Waiting requests per priority level. */
  by_priority: Record<string, number>;
}

export class QueueTicket {
  /** Index in the heap; -1 once out of the queue. */
  heapIndex = -1;
  private resolveTurn: (() => void) | undefined;
  private rejectTurn: ((err: unknown) => void) | undefined;
  private failure: unknown;
  private turns = 0;
  timer: unknown;
  lastPosition = 0;

  constructor(
    private readonly queue: AdmissionQueue,
    readonly priority: number,
    readonly seq: number,
    readonly enqueuedMs: number,
    readonly signal: AbortSignal,
    readonly onPosition: ((position: number, size: number) => void) | undefined,
    readonly onAbort: () => void,
  ) {}

  get waiting(): boolean {
    return this.resolveTurn !== undefined;
  }

  get queued(): boolean {
    return this.heapIndex !== -1;
  }

  /** First in line now (one woken earlier may have been overtaken by a higher priority since). */
  get isFirst(): boolean {
    return this.queue.isHead(this);
  }

  /** Resolves when this request is first in line and capacity may be free. */
  turn(): Promise<void> {
    if (this.failure !== undefined) return Promise.reject(this.failure);
    return new Promise<void>((resolve, reject) => {
      this.resolveTurn = resolve;
      this.rejectTurn = reject;
      // The first look of a request that is (or becomes) first in line costs no wait.
      if (this.turns++ === 0 && this.queue.isHead(this)) this.grant();
    });
  }

  /** Admitted: out of the queue, counted as drained; the next in line gets its turn. */
  leave(): void {
    this.queue.depart(this, true);
  }

  /** Gave up (refused for another reason): out of the queue, not counted as drained. */
  abandon(): void {
    this.queue.depart(this, false);
  }

  /** @internal */
  grant(): void {
    const r = this.resolveTurn;
    this.resolveTurn = this.rejectTurn = undefined;
    r?.();
  }

  /** @internal */
  fail(err: unknown): void {
    this.failure = err;
    const r = this.rejectTurn;
    this.resolveTurn = this.rejectTurn = undefined;
    r?.(err);
  }
}

export class AdmissionQueue {
  private readonly heap: QueueTicket[] = [];
  private seq = 0;
  private readonly drain: DrainRate;
  private statusTimer: unknown;
  private readonly statusIntervalMs: number;

  constructor(private readonly o: AdmissionQueueOptions) {
    this.drain = new DrainRate(o.drainWindowMs);
    this.statusIntervalMs = o.statusIntervalMs ?? 1000;
  }

  get size(): number {
    return this.heap.length;
  }

  /** A queue of size 0 refuses at once: the seed's behaviour (503 at capacity). */
  get enabled(): boolean {
    return this.o.maxSize > 0;
  }

  isHead(t: QueueTicket): boolean {
    return this.heap[0] === t;
  }

  /** The refusal a newcomer gets now: `queue_full` (429, with Retry-After) when the line is full. */
  refusalIfFull(): ServingError | undefined {
    if (this.heap.length < this.o.maxSize) return undefined;
    return new ServingError("queue_full", `the admission queue is full (${this.o.maxSize} requests waiting)`, { retryAfterS: this.retryAfterS() });
  }

  /** Joins the line; throws `queue_full` (429, with Retry-After) when it is full. */
  enqueue(e: EnqueueOptions): QueueTicket {
    const full = this.refusalIfFull();
    if (full !== undefined) throw full;
    if (e.signal.aborted) throw new ServingError("client_closed", "client went away");
    const now = this.o.clock.now();
    const t: QueueTicket = new QueueTicket(this, e.priority, this.seq++, now, e.signal, e.onPosition, () => {
      this.depart(t, false);
      t.fail(new ServingError("client_closed", "client went away"));
    });
    this.push(t);
    e.signal.addEventListener("abort", t.onAbort, { once: true });
    t.timer = this.o.timers.setTimeout(() => {
      if (!t.queued) return;
      const waited = Math.round(this.o.clock.now() - t.enqueuedMs);
      this.depart(t, false);
      t.fail(new ServingError("queue_timeout", `no capacity freed within ${waited} ms in the admission queue`, { retryAfterS: this.retryAfterS() }));
    }, this.o.timeoutMs);
    if (t.onPosition !== undefined) {
      t.lastPosition = this.positionOf(t);
      t.onPosition(t.lastPosition, this.heap.length);
      this.startStatus();
    }
    return t;
  }

  /** Capacity may have freed: the first in line, if it waits, gets to look. */
  kick(): void {
    const head = this.heap[0];
    if (head !== undefined && head.waiting) head.grant();
  }

  /** Seconds a refused client should wait: the line ahead of it over the observed drain rate. */
  retryAfterS(): number {
    const maxS = Math.max(1, Math.ceil(this.o.timeoutMs / 1000));
    const rate = this.drain.perSecond(this.o.clock.now());
    if (rate <= 0) return maxS;
    return Math.min(maxS, Math.max(1, Math.ceil((this.heap.length + 1) / rate)));
  }

  snapshot(): QueueSnapshot {
    const now = this.o.clock.now();
    const byPriority: Record<string, number> = {};
    let oldest = now;
    for (const t of this.heap) {
      byPriority[t.priority] = (byPriority[t.priority] ?? 0) + 1;
      if (t.enqueuedMs < oldest) oldest = t.enqueuedMs;
    }
    return {
      size: this.heap.length, max_size: this.o.maxSize, timeout_ms: this.o.timeoutMs,
      drain_per_s: Math.round(this.drain.perSecond(now) * 1000) / 1000, oldest_wait_ms: Math.round(now - oldest),
      retry_after_s: this.retryAfterS(), by_priority: byPriority,
    };
  }

  /** 1-based rank of a ticket in the line (O(n)). */
  positionOf(t: QueueTicket): number {
    let p = 1;
    for (const o of this.heap) if (o !== t && before(o, t)) p++;
    return p;
  }

  /** @internal Takes a ticket out of the line (admitted, timed out or gone); wakes the next. */
  depart(t: QueueTicket, admitted: boolean): void {
    if (!t.queued) return;
    const wasHead = this.heap[0] === t;
    this.removeAt(t.heapIndex);
    this.o.timers.clearTimeout(t.timer);
    t.signal.removeEventListener("abort", t.onAbort);
    if (admitted) this.drain.record(this.o.clock.now());
    if (wasHead) this.kick();
  }

  private startStatus(): void {
    if (this.statusTimer !== undefined) return;
    this.statusTimer = this.o.timers.setTimeout(() => {
      this.statusTimer = undefined;
      this.notifyPositions();
    }, this.statusIntervalMs);
  }

  /** Tells every listening waiter its position (each status interval); O(n log n). */
  notifyPositions(): void {
    const listening = this.heap.filter((t) => t.onPosition !== undefined);
    if (listening.length === 0) return;
    const ordered = [...this.heap].sort((a, b) => (before(a, b) ? -1 : 1));
    ordered.forEach((t, i) => {
      t.lastPosition = i + 1;
      t.onPosition?.(i + 1, ordered.length);
    });
    this.startStatus();
  }

  // ---- binary heap on (priority, seq) ------------------------------------------------------

  private push(t: QueueTicket): void {
    t.heapIndex = this.heap.length;
    this.heap.push(t);
    this.up(t.heapIndex);
  }

  private removeAt(i: number): void {
    const t = this.heap[i]!;
    const last = this.heap.pop()!;
    t.heapIndex = -1;
    if (last === t) return;
    this.heap[i] = last;
    last.heapIndex = i;
    this.up(i);
    this.down(last.heapIndex);
  }

  private up(i: number): void {
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!before(this.heap[i]!, this.heap[p]!)) break;
      this.swap(i, p);
      i = p;
    }
  }

  private down(i: number): void {
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < this.heap.length && before(this.heap[l]!, this.heap[m]!)) m = l;
      if (r < this.heap.length && before(this.heap[r]!, this.heap[m]!)) m = r;
      if (m === i) return;
      this.swap(i, m);
      i = m;
    }
  }

  private swap(i: number, j: number): void {
    const a = this.heap[i]!;
    const b = this.heap[j]!;
    this.heap[i] = b;
    this.heap[j] = a;
    a.heapIndex = j;
    b.heapIndex = i;
  }
}

function before(a: QueueTicket, b: QueueTicket): boolean {
  return a.priority < b.priority || (a.priority === b.priority && a.seq < b.seq);
}
