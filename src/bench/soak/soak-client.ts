import { Agent } from "undici";
import type { Rng } from "../../common/rng.js";
import { closedLoops, postJson } from "../load-client.js";

/**
 * The soak's clients: closed loops, each sending its next request when the last one ended, over
 * every front door (seed stream, seed stream of a conversation, OpenAI chat stream, OpenAI
 * one-body completion); some hang up at a random moment. A request counts as:
 *   ok        the answer ended as its protocol says a complete answer ends
 *   error     it ended otherwise (error event, cut, malformed)
 *   rejected  429 or 503 before any work
 *   aborted   its client hung up on purpose
 *   hung      still open after the request timeout
 */
export type SoakOutcome = "ok" | "error" | "rejected" | "aborted" | "hung";
export const SOAK_OUTCOMES: readonly SoakOutcome[] = ["ok", "error", "rejected", "aborted", "hung"];

export interface SoakClientOptions {
  url: string;
  rng: Rng;
  disconnect: number;
  requestTimeoutMs: number;
  /** Conversations (x-session-id) drawn from a fixed pool: worker-side kept state stays bounded. */
  conversations: number;
  /** Time per token of the sim workers (ms), to spread hang-ups over a stream's life. */
  itlMs: number;
}

type Kind = "seed" | "conversation" | "chat-stream" | "completion";
const KINDS: [Kind, number][] = [["seed", 0.45], ["conversation", 0.2], ["chat-stream", 0.2], ["completion", 0.15]];

export class SoakClient {
  readonly counts = new Map<SoakOutcome, number>(SOAK_OUTCOMES.map((o) => [o, 0]));
  private readonly agent = new Agent({ connections: null, pipelining: 1, keepAliveTimeout: 10_000 });
  private seq = 0;

  constructor(private readonly o: SoakClientOptions) {}

  /** Runs `loops` closed loops until `stop` is aborted; resolves when every loop's last request ended. */
  async run(loops: number, stop: AbortSignal): Promise<void> {
    await closedLoops(loops, async () => {
      if (stop.aborted) return false;
      const outcome = await this.one();
      this.counts.set(outcome, this.counts.get(outcome)! + 1);
      return true;
    });
  }

  async close(): Promise<void> {
    await this.agent.close();
  }

  private async one(): Promise<SoakOutcome> {
    const { rng } = this.o;
    const n = this.seq++;
    const kind = pick(rng.next());
    const maxTokens = 16 + Math.floor(rng.next() * 113);
    const hangUpMs = rng.next() < this.o.disconnect ? rng.next() * maxTokens * this.o.itlMs : undefined;
    const abort = new AbortController();
    let why: "aborted" | "hung" | undefined;
    const timers = [
      setTimeout(() => ((why = "hung"), abort.abort()), this.o.requestTimeoutMs),
      ...(hangUpMs === undefined ? [] : [setTimeout(() => ((why = "aborted"), abort.abort()), hangUpMs)]),
    ];
    const headers: Record<string, string> = { "x-request-id": `soak-${n}` };
    const prompt = `Once upon a time, soak story ${n}`;
    let path: string;
    let body: Record<string, unknown>;
    switch (kind) {
      case "seed":
      case "conversation":
        path = "/coordinator/infer";
        body = { prompt, model: "sim", max_tokens: maxTokens };
        if (kind === "conversation") headers["x-session-id"] = `soak-conversation-${Math.floor(rng.next() * this.o.conversations)}`;
        break;
      case "chat-stream":
        path = "/v1/chat/completions";
        body = { model: "sim", messages: [{ role: "user", content: prompt }], max_tokens: maxTokens, stream: true, stream_options: { include_usage: true } };
        break;
      case "completion":
        path = "/v1/completions";
        body = { model: "sim", prompt, max_tokens: maxTokens };
        break;
    }
    try {
      const res = await postJson(`${this.o.url}${path}`, body, { headers, signal: abort.signal, dispatcher: this.agent });
      const text = await res.body.text();
      if (res.statusCode === 429 || res.statusCode === 503) return "rejected";
      if (res.statusCode !== 200) return "error";
      return completeAnswer(kind, text) ? "ok" : "error";
    } catch {
      return why ?? "error";
    } finally {
      for (const t of timers) clearTimeout(t);
    }
  }
}

function pick(u: number): Kind {
  let acc = 0;
  for (const [k, w] of KINDS) {
    acc += w;
    if (u < acc) return k;
  }
  return "seed";
}

/** Whether an answer ended as its protocol says a complete one ends. */
function completeAnswer(kind: Kind, text: string): boolean {
  if (kind === "seed" || kind === "conversation") return /"finished":true,"reason":"(?:length|stop)"/.test(text);
  if (kind === "chat-stream") return text.trimEnd().endsWith("data: [DONE]") && !text.includes('"error"');
  try {
    const b = JSON.parse(text) as { choices?: { finish_reason?: string }[] };
    return typeof b.choices?.[0]?.finish_reason === "string";
  } catch {
    return false;
  }
}
