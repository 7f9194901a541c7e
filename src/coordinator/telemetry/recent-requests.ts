/**
 * The last requests (default 200) with their timelines, for the dashboard: arrival → admission →
 * each scheduling decision with its scores → prefill → first token → the end and why. A bounded
 * ring: the oldest record is overwritten, so memory stays fixed whatever the traffic. Events are
 * added per request step (a handful per request), never per token.
 */
export type RequestState = "admission" | "prefill" | "streaming" | "done" | "failed" | "rejected";

export interface TimelineEvent {
  /** Milliseconds since the request arrived. */
  readonly at_ms: number;
  readonly kind: string;
  readonly detail?: Readonly<Record<string, unknown>>;
}

export class RequestRecord {
  state: RequestState = "admission";
  workerId: string | undefined;
  sessionId: string | undefined;
  tokens = 0;
  /** How it ended: a stream termination, or an error code before streaming. */
  outcome: string | undefined;
  readonly events: TimelineEvent[] = [];

  constructor(
    readonly seq: number,
    readonly requestId: string,
    readonly model: string,
    readonly maxTokens: number | undefined,
    /** Epoch ms, shown to people. */
    readonly wallStartMs: number,
    /** Monotonic ms, for the offsets. */
    readonly startMs: number,
  ) {}

  add(kind: string, nowMs: number, detail?: Record<string, unknown>): void {
    // A request retried many times stays bounded too.
    if (this.events.length < 32) this.events.push({ at_ms: Math.round((nowMs - this.startMs) * 10) / 10, kind, ...(detail ? { detail } : {}) });
  }

  toJSON(): Record<string, unknown> {
    return {
      seq: this.seq, request_id: this.requestId, model: this.model, max_tokens: this.maxTokens ?? null, started_at: this.wallStartMs,
      state: this.state, worker_id: this.workerId ?? null, session_id: this.sessionId ?? null, tokens: this.tokens,
      outcome: this.outcome ?? null, events: this.events,
    };
  }
}

export class RecentRequests {
  private readonly ring: (RequestRecord | undefined)[];
  private next = 0;

  constructor(readonly capacity = 200) {
    this.ring = new Array<RequestRecord | undefined>(capacity);
  }

  open(requestId: string, model: string, maxTokens: number | undefined, wallNowMs: number, nowMs: number): RequestRecord {
    const r = new RequestRecord(this.next, requestId, model, maxTokens, wallNowMs, nowMs);
    this.ring[this.next % this.capacity] = r;
    this.next++;
    return r;
  }

  /** Newest first, at most `limit`. */
  latest(limit = this.capacity): RequestRecord[] {
    const out: RequestRecord[] = [];
    for (let i = this.next - 1; i >= 0 && i >= this.next - this.capacity && out.length < limit; i--) out.push(this.ring[i % this.capacity]!);
    return out;
  }

  get total(): number {
    return this.next;
  }
}
