import { sseData } from "./sse.js";

/**
 * The seed's client stream on the wire: `data: {"token":"…","finished":false}` per token, then one
 * event with `finished: true` and the stop reason (or an `error`), then the stream closes.
 */
export function seedTokenEvents(texts: readonly string[]): string {
  let out = "";
  for (const t of texts) out += `data: {"token":${JSON.stringify(t)},"finished":false}\n\n`;
  return out;
}

export function seedEndEvent(reason: string, promptTokens: number, completionTokens: number): string {
  return sseData(JSON.stringify({ token: "", finished: true, reason, prompt_tokens: promptTokens, completion_tokens: completionTokens }));
}

export function seedErrorEvent(code: string, message: string): string {
  return sseData(JSON.stringify({ token: "", finished: true, reason: "error", error: { code, message } }));
}
