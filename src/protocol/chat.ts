import { ServingError } from "./serving-error.js";
import type { JsonObject } from "./validate.js";
import { MAX_PROMPT_CHARS } from "./limits.js";

/**
 * Chat messages as they travel from a client to the worker that renders them with its model's chat
 * template. OpenAI's shapes are accepted: `content` as a string or as a list of text parts; the
 * `developer` role is a system message. Other roles (tools) and non-text parts are refused.
 */
export type ChatRole = "system" | "user" | "assistant";

export interface ChatMessage {
  role: ChatRole;
  content: string;
}

export const MAX_CHAT_MESSAGES = 4096;

const ROLES: Readonly<Record<string, ChatRole>> = { system: "system", developer: "system", user: "user", assistant: "assistant" };

/** Reads `messages`; `param` names the field in errors (`messages[2].content`). */
export function readChatMessages(v: unknown, param = "messages"): ChatMessage[] {
  if (v === undefined || v === null) throw new ServingError("missing_field", `missing required field '${param}'`, { param });
  if (!Array.isArray(v) || v.length === 0) throw new ServingError("invalid_field", `'${param}' must be a non-empty list of messages`, { param });
  if (v.length > MAX_CHAT_MESSAGES) throw new ServingError("invalid_field", `'${param}' holds more than ${MAX_CHAT_MESSAGES} messages`, { param });
  let chars = 0;
  const out: ChatMessage[] = [];
  for (let i = 0; i < v.length; i++) {
    const at = `${param}[${i}]`;
    const m = v[i] as JsonObject;
    if (typeof m !== "object" || m === null || Array.isArray(m)) throw new ServingError("invalid_field", `'${at}' must be an object`, { param: at });
    const role = typeof m.role === "string" ? ROLES[m.role] : undefined;
    if (role === undefined) {
      throw new ServingError("invalid_field", `'${at}.role' must be one of system, developer, user, assistant`, { param: `${at}.role` });
    }
    const content = readContent(m.content, `${at}.content`);
    chars += content.length;
    if (chars > MAX_PROMPT_CHARS) throw new ServingError("invalid_field", `'${param}' hold more than ${MAX_PROMPT_CHARS} characters`, { param });
    out.push({ role, content });
  }
  return out;
}

function readContent(v: unknown, param: string): string {
  if (typeof v === "string") return v;
  if (Array.isArray(v)) {
    let text = "";
    for (let j = 0; j < v.length; j++) {
      const part = v[j] as JsonObject;
      if (typeof part !== "object" || part === null || part.type !== "text" || typeof part.text !== "string") {
        throw new ServingError("invalid_field", `'${param}[${j}]' must be a text part {"type":"text","text":"…"}; other content types are not supported`, {
          param: `${param}[${j}]`,
        });
      }
      text += part.text;
    }
    return text;
  }
  throw new ServingError("invalid_field", `'${param}' must be a string or a list of text parts`, { param });
}
