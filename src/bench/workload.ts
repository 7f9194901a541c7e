import type { Rng } from "../common/rng.js";
import type { RequestResult } from "./request-result.js";
import type { ChatMessage, RequestSpec } from "./targets.js";

/**
 * What the bench tool asks. Token lengths are drawn from a `LengthDist` ("128" fixed, "64:256"
 * uniform). Prompt text is made of 4-byte words (" cat") that cost about one token each on real
 * tokenizers and exactly one on the sim engine's.
 *   - random: independent prompts (a distinct first words keeps them from sharing a prefix);
 *   - chat: `users` conversations of `turns` turns each, all under one shared system prompt; a
 *     turn's prompt is the system prompt, the whole history (with the answers actually received)
 *     and a new user message; a user's next turn starts only after the previous one ended.
 */
export interface LengthDist {
  min: number;
  max: number;
}

export function parseLengthDist(raw: string): LengthDist {
  const m = /^(\d+)(?::(\d+))?$/.exec(raw.trim());
  if (!m) throw new Error("expected a token count (128) or a range (64:256)");
  const min = Number(m[1]);
  const max = m[2] === undefined ? min : Number(m[2]);
  if (min < 1 || max < min) throw new Error("expected 1 ≤ min ≤ max");
  return { min, max };
}

export function drawLength(d: LengthDist, rng: Rng): number {
  return d.min + Math.floor(rng.next() * (d.max - d.min + 1));
}

const WORDS = (
  "cat dog sun sky day one two red big run fly saw had was and for not but you all new old hot " +
  "toy box car boy mom sea owl bee hen fox pig cow ant elf joy map pen cup hat bed bus egg leg arm"
).split(" ").map((w) => ` ${w}`);

export function wordsText(tokens: number, rng: Rng): string {
  let s = "";
  for (let i = 0; i < tokens; i++) s += WORDS[Math.floor(rng.next() * WORDS.length)];
  return s;
}

export interface Workload {
  /** The next request, or undefined when none is ready now (every conversation is waiting). */
  next(index: number): RequestSpec | undefined;
  /** True when no request will ever be ready again. */
  readonly exhausted: boolean;
  /** Called with each finished request's result. */
  done(spec: RequestSpec, result: RequestResult): void;
}

export class RandomWorkload implements Workload {
  readonly exhausted = false;

  constructor(private readonly input: LengthDist, private readonly output: LengthDist, private readonly rng: Rng) {}

  next(index: number): RequestSpec {
    // The request's number up front: no two prompts share a prefix longer than a word or two.
    const prompt = ` ${index}${wordsText(Math.max(0, drawLength(this.input, this.rng) - 1), this.rng)}`;
    return { index, prompt, messages: [{ role: "user", content: prompt }], maxTokens: drawLength(this.output, this.rng) };
  }

  done(): void {}
}

export interface ChatWorkloadOptions {
  users: number;
  turns: number;
  systemPromptTokens: number;
  userTokens: LengthDist;
  output: LengthDist;
}

interface Conversation {
  id: string;
  messages: ChatMessage[];
  turnsDone: number;
  busy: boolean;
}

export class ChatWorkload implements Workload {
  private readonly conversations: Conversation[];
  private cursor = 0;

  constructor(private readonly o: ChatWorkloadOptions, private readonly rng: Rng) {
    const system = `You are a helpful assistant.${wordsText(Math.max(0, o.systemPromptTokens - 7), rng)}`;
    this.conversations = Array.from({ length: o.users }, (_, i) => ({
      id: `user-${i + 1}`, messages: [{ role: "system", content: system }], turnsDone: 0, busy: false,
    }));
  }

  get exhausted(): boolean {
    return this.conversations.every((c) => c.turnsDone >= this.o.turns);
  }

  /** Round-robin over conversations that have turns left and are not waiting for an answer. */
  next(index: number): RequestSpec | undefined {
    const n = this.conversations.length;
    for (let k = 0; k < n; k++) {
      const c = this.conversations[(this.cursor + k) % n]!;
      if (c.busy || c.turnsDone >= this.o.turns) continue;
      this.cursor = (this.cursor + k + 1) % n;
      c.busy = true;
      const messages: ChatMessage[] = [...c.messages, { role: "user", content: wordsText(drawLength(this.o.userTokens, this.rng), this.rng) }];
      return { index, prompt: flatten(messages), messages, maxTokens: drawLength(this.o.output, this.rng), sessionId: c.id };
    }
    return undefined;
  }

  done(spec: RequestSpec, result: RequestResult): void {
    const c = this.conversations.find((x) => x.id === spec.sessionId);
    if (c === undefined) return;
    c.busy = false;
    c.turnsDone++;
    // A failed turn still counts as a turn; its history keeps the question and whatever came back.
    c.messages = [...spec.messages, { role: "assistant", content: result.text }];
  }
}

/** A conversation as one prompt, for the APIs that take text. */
export function flatten(messages: readonly ChatMessage[]): string {
  return messages.map((m) => `${m.role === "system" ? "System" : m.role === "user" ? "User" : "Assistant"}:${m.content}\n`).join("") + "Assistant:";
}
