import type { RenderedChat } from "../engine/engine.js";
import type { ChatMessage } from "../protocol/chat.js";

/**
 * Chat for an engine that has no chat template (e.g. a simulated engine): a plain transcript,
 * `System: …`, `User: …`, `Assistant: …`, ending with `Assistant:`; the assistant's turn ends where
 * the model starts another speaker's line.
 */
const LABEL = { system: "System", user: "User", assistant: "Assistant" } as const;
const STOPS = ["\nUser:", "\nSystem:"];

export function renderPlainChat(messages: readonly ChatMessage[], tokenize: (text: string) => number[]): RenderedChat {
  let text = messages.map((m) => `${LABEL[m.role]}: ${m.content}`).join("\n\n");
  if (messages[messages.length - 1]?.role !== "assistant") text += "\n\nAssistant:";
  return { tokens: tokenize(text), stops: STOPS, stopTokens: [], template: "plain" };
}
