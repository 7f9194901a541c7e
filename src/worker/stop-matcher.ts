import { JsonEndTracker } from "./json-end.js";

/**
 * Applies stop strings to generated text as it streams: text that could still be the start of a
 * stop string is held back until the next token decides, so a stop string split across tokens is
 * honoured and never emitted, and nothing that precedes it is lost. With `jsonEnd`, generation also
 * ends where the root JSON value closes (see json-end.ts). Engine-agnostic: it sees text only.
 *
 * Cost per token: O(Σ stop lengths) for the hold-back check (stops are at most 16 × 256 chars).
 */
export interface StopMatcherOptions {
  stops: readonly string[];
  /** "object": only a root object is tracked (json-end.ts). */
  jsonEnd?: boolean | "object";
}

export interface StopStep {
  /** Text safe to emit now (possibly empty). */
  text: string;
  /** Generation must end: a stop string matched, or the JSON document closed. */
  stop: boolean;
}

export class StopMatcher {
  private pending = "";
  private readonly stops: readonly string[];
  private readonly json: JsonEndTracker | undefined;
  private ended = false;

  constructor(o: StopMatcherOptions) {
    this.stops = o.stops.filter((s) => s.length > 0);
    this.json = o.jsonEnd ? new JsonEndTracker(o.jsonEnd === "object") : undefined;
  }

  /** True when the matcher changes nothing (the decode path then skips it). */
  get isPassThrough(): boolean {
    return this.stops.length === 0 && this.json === undefined;
  }

  push(piece: string): StopStep {
    if (this.ended) return { text: "", stop: true };
    let text = piece;
    let stop = false;
    if (this.json !== undefined) {
      const end = this.json.scan(text);
      if (end !== -1) {
        text = text.slice(0, end);
        stop = true;
      }
    }
    if (this.stops.length === 0) {
      if (stop) this.ended = true;
      return { text, stop };
    }
    const buf = this.pending + text;
    // Earliest stop string wins; what precedes it is emitted.
    let at = -1;
    for (const s of this.stops) {
      const i = buf.indexOf(s);
      if (i !== -1 && (at === -1 || i < at)) at = i;
    }
    if (at !== -1) {
      this.pending = "";
      this.ended = true;
      return { text: buf.slice(0, at), stop: true };
    }
    if (stop) {
      this.pending = "";
      this.ended = true;
      return { text: buf, stop: true };
    }
    const hold = this.heldSuffix(buf);
    this.pending = hold === 0 ? "" : buf.slice(buf.length - hold);
    return { text: hold === 0 ? buf : buf.slice(0, buf.length - hold), stop: false };
  }

  /** Text still held when generation ended for another reason; it was not a stop string. */
  flush(): string {
    const out = this.pending;
    this.pending = "";
    return out;
  }

  /** Length of the longest suffix of `buf` that is a proper prefix of some stop string. */
  private heldSuffix(buf: string): number {
    let best = 0;
    for (const s of this.stops) {
      for (let k = Math.min(s.length - 1, buf.length); k > best; k--) {
        if (endsWithPrefix(buf, s, k)) {
          best = k;
          break;
        }
      }
    }
    return best;
  }
}

/** buf ends with the first k characters of s. */
function endsWithPrefix(buf: string, s: string, k: number): boolean {
  const off = buf.length - k;
  for (let i = 0; i < k; i++) if (buf.charCodeAt(off + i) !== s.charCodeAt(i)) return false;
  return true;
}
