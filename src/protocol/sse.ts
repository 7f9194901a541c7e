/**
 * Server-Sent Events framing, exact bytes: an event is `data: <json>\n\n`; a comment (used for
 * keep-alives and queue positions) is `: <text>\n\n`. The parser is incremental: feed it decoded
 * text as it arrives and it returns the complete events; a partial event waits for its end.
 */
export function sseData(json: string): string {
  return `data: ${json}\n\n`;
}

export function sseComment(text: string): string {
  return `: ${text.replace(/[\r\n]+/g, " ")}\n\n`;
}

export const SSE_HEADERS: Readonly<Record<string, string>> = {
  "content-type": "text/event-stream; charset=utf-8",
  "cache-control": "no-cache, no-transform",
  connection: "keep-alive",
  // Tell reverse proxies (nginx) not to buffer the stream.
  "x-accel-buffering": "no",
};

export interface SseEvent {
  event: string | undefined;
  data: string;
}

/**
 * An incremental reader that hands out one event at a time, so that a consumer can stop after N
 * events and leave the rest unparsed until it has room (bounded work per socket read: a 64 KiB
 * read holds ~1,500 token events). Events are scanned in place; the text is copied only when an
 * event straddles two chunks.
 */
export class SseReader {
  private buf = "";
  private pos = 0;

  push(chunk: string): void {
    let text = this.pos >= this.buf.length ? chunk : this.buf.slice(this.pos) + chunk;
    if (chunk.includes("\r")) text = text.replace(/\r\n?/g, "\n");
    this.buf = text;
    this.pos = 0;
  }

  /** The `data` of the next complete event (comment-only events skipped), or undefined. */
  nextData(): string | undefined {
    for (;;) {
      const { buf, pos } = this;
      const end = buf.indexOf("\n\n", pos);
      if (end === -1) return undefined;
      this.pos = end + 2;
      // Fast path: a single `data: ` line, which is what our workers send.
      if (buf.startsWith("data: ", pos) && buf.indexOf("\n", pos) === end) return buf.slice(pos + 6, end);
      const ev = parseBlock(buf.slice(pos, end));
      if (ev !== null) return ev.data;
    }
  }

  /** The next complete event, or undefined. */
  next(): SseEvent | undefined {
    for (;;) {
      const { buf, pos } = this;
      const end = buf.indexOf("\n\n", pos);
      if (end === -1) return undefined;
      this.pos = end + 2;
      const ev = parseBlock(buf.slice(pos, end));
      if (ev !== null) return ev;
    }
  }

  /** True when a complete event waits to be read. */
  get hasEvent(): boolean {
    return this.buf.indexOf("\n\n", this.pos) !== -1;
  }

  /** Characters received and not yet handed out (for bounding memory against a hostile peer). */
  get pendingLength(): number {
    return this.buf.length - this.pos;
  }
}

export class SseParser {
  private readonly reader = new SseReader();

  /** Returns the events completed by this chunk, in order. */
  push(chunk: string): SseEvent[] {
    this.reader.push(chunk);
    const out: SseEvent[] = [];
    for (let ev = this.reader.next(); ev !== undefined; ev = this.reader.next()) out.push(ev);
    return out;
  }

  /** Bytes of an unfinished event held back (for bounding memory against a hostile peer). */
  get pendingLength(): number {
    return this.reader.pendingLength;
  }
}

function parseBlock(block: string): SseEvent | null {
  // Fast path: a single `data: ` line, which is what our workers send.
  if (block.startsWith("data: ") && block.indexOf("\n") === -1) return { event: undefined, data: block.slice(6) };
  let event: string | undefined;
  const data: string[] = [];
  for (const line of block.split("\n")) {
    if (line === "" || line.startsWith(":")) continue;
    const colon = line.indexOf(":");
    const field = colon === -1 ? line : line.slice(0, colon);
    let value = colon === -1 ? "" : line.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    if (field === "data") data.push(value);
    else if (field === "event") event = value;
  }
  if (data.length === 0) return null;
  return { event, data: data.join("\n") };
}
