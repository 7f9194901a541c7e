/**
 * Reads a worker's token event `{"token":"<text>","seq":<n>}` (worker-api.ts) without JSON.parse
 * when its text holds no escape, which is nearly always: the relay reads one per token, and
 * parse + re-serialize was a measurable share of its CPU. Anything else (escapes, the final event,
 * unexpected fields) returns undefined and is parsed in full by the caller. The event's `seq` goes
 * into the caller's slot (one per stream, reused: no object is allocated per token).
 */
const TOKEN_PREFIX = '{"token":"';
const SEQ_INFIX = ',"seq":';

/** Where `fastTokenText` leaves the `seq` of the event it read. */
export interface TokenSeqSlot {
  seq: number;
}

export function fastTokenText(data: string, slot: TokenSeqSlot): string | undefined {
  if (!data.startsWith(TOKEN_PREFIX)) return undefined;
  const from = TOKEN_PREFIX.length;
  const quote = data.indexOf('"', from);
  if (quote === -1) return undefined;
  const backslash = data.indexOf("\\", from);
  if (backslash !== -1 && backslash < quote) return undefined;
  if (!data.startsWith(SEQ_INFIX, quote + 1) || data.charCodeAt(data.length - 1) !== 125 /* } */) return undefined;
  const last = data.length - 1;
  let i = quote + 1 + SEQ_INFIX.length;
  if (i === last) return undefined;
  let seq = 0;
  for (; i < last; i++) {
    const c = data.charCodeAt(i) - 48;
    if (c < 0 || c > 9) return undefined;
    seq = seq * 10 + c;
  }
  slot.seq = seq;
  return data.slice(from, quote);
}
