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

export class SseParser {
  private buf = "";

  /** Returns the events completed by this chunk, in order. */
  push(chunk: string): SseEvent[] {
    let text = this.buf === "" ? chunk : this.buf + chunk;
    if (text.includes("\r")) text = text.replace(/\r\n?/g, "\n");
    const out: SseEvent[] = [];
    let start = 0;
    for (;;) {
      const end = text.indexOf("\n\n", start);
      if (end === -1) break;
      const block = text.slice(start, end);
      start = end + 2;
      const ev = parseBlock(block);
      if (ev !== null) out.push(ev);
    }
    this.buf = start === 0 ? text : text.slice(start);
    return out;
  }

  /** Bytes of an unfinished event held back (for bounding memory against a hostile peer). */
  get pendingLength(): number {
    return this.buf.length;
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
