import type { ServerResponse } from "node:http";
import { once } from "node:events";
import { BoundedChannel } from "../common/bounded-channel.js";
import type { Logger } from "../common/logger.js";
import { httpStatusOf } from "../protocol/error-mapping.js";
import { isServingError } from "../protocol/serving-error.js";
import type { EngineSequence } from "../engine/engine.js";
import type { CacheNotice } from "../protocol/heartbeat.js";
import type { DecodeFinalEvent, StopReason } from "../protocol/worker-api.js";
import { sseData } from "../protocol/sse.js";
import type { SamplingParams } from "../protocol/sampling.js";
import type { Session } from "./session.js";
import { StopMatcher } from "./stop-matcher.js";
import { logprobContentOf } from "./logprob-entry.js";

/**
 * The decode pump of one session: the engine produces tokens into a bounded channel (32 by
 * default); a writer drains the channel to the HTTP response, merging whatever is queued into one
 * write and awaiting `drain` when the socket is full. A reader that stops reading fills the channel,
 * and then this session's sequence stops being evaluated while the others keep their pace.
 *
 * How output ends is decided here, for every engine alike: stop strings (held back while they may
 * still match, never emitted), a chat template's end-of-turn tokens, and the close of the root value
 * under a JSON response format. One event per generated token keeps `seq` equal to the token index;
 * text held back when generation ends otherwise rides on the final event.
 */
export interface DecodeStreamOptions {
  session: Session;
  sequence: EngineSequence;
  res: ServerResponse;
  maxTokens: number;
  channelTokens: number;
  log: Logger;
  /** Called for every generated token (metrics, held-KV accounting). */
  onToken?: () => void;
  /** Called once generation is over, before the final event is written; may add a cache notice to it. */
  onGenerated?: (reason: StopReason) => CacheNotice | undefined;
  /**
   * Awaited with that notice before the final event is written: tells every coordinator (bounded
   * in time), so the client's next turn finds the entry through whichever coordinator it reaches.
   */
  announce?: (notice: CacheNotice) => Promise<unknown>;
}

export interface DecodeOutcome {
  reason: StopReason;
  completionTokens: number;
  error?: { code: string; message: string };
}

export async function streamDecode(o: DecodeStreamOptions): Promise<DecodeOutcome> {
  const { session, res } = o;
  const signal = session.abort.signal;
  const channel = new BoundedChannel<string>(o.channelTokens);
  const onAbort = () => channel.abort();
  signal.addEventListener("abort", onAbort, { once: true });

  let completion = 0;
  let failure: { code: string; message: string } | undefined;
  const matcher = new StopMatcher({ stops: session.stops, jsonEnd: jsonEndOf(session.sampling) });
  const filter = !matcher.isPassThrough;
  const stopTokens = session.stopTokens;
  let stopped = false;
  const produce = (async () => {
    try {
      for await (const tok of o.sequence.generate({ sampling: session.sampling, maxTokens: o.maxTokens, signal })) {
        if (stopTokens.size > 0 && stopTokens.has(tok.id)) {
          stopped = true;
          break;
        }
        const seq = completion++;
        session.generated = completion;
        session.heldTokens++;
        o.onToken?.();
        let text = tok.text;
        if (filter) {
          const step = matcher.push(text);
          text = step.text;
          stopped = step.stop;
        }
        session.outputText += text;
        // A token's logprobs ride on its own event, even when its text is held back (stop strings).
        const lp = tok.logprobs === undefined ? "" : `,"logprobs":[${JSON.stringify(logprobContentOf(tok.logprobs))}]`;
        if (!(await channel.push(`{"token":${JSON.stringify(text)},"seq":${seq}${lp}}`))) break;
        if (signal.aborted || stopped) break;
      }
    } catch (err) {
      if (!signal.aborted) {
        // A request's own fault (a grammar dead end) keeps its code and is no engine failure.
        const own = isServingError(err) && httpStatusOf(err.code) < 500;
        failure = { code: own ? err.code : "decode_failed", message: (err as Error).message };
        if (own) o.log.info({ code: err.code, error: err.message }, "decode.refused");
        else o.log.error({ err }, "decode.failed");
      }
    } finally {
      channel.close();
    }
  })();

  let writable = true;
  while (writable && (await channel.waitReadable())) {
    const events = channel.drain();
    let chunk = "";
    for (const e of events) chunk += sseData(e);
    writable = await write(res, chunk);
  }
  await produce;
  signal.removeEventListener("abort", onAbort);

  const reason: StopReason = failure ? "error"
    : signal.aborted || !writable ? "cancelled"
      : stopped ? "stop"
        : completion >= o.maxTokens ? "length" : "stop";
  let final: DecodeFinalEvent | undefined;
  if (reason !== "cancelled" && writable) {
    const tail = reason === "error" ? "" : matcher.flush();
    session.outputText += tail;
    final = {
      token: tail, seq: completion, finished: true, reason,
      prompt_tokens: session.promptTokens, completion_tokens: completion,
      ...(failure ? { error: failure } : {}),
    };
  }
  // Before the last event leaves: a finished sequence is kept, and every coordinator told, before
  // the client can send its next turn (the relaying one also reads the notice on the final event).
  const cache = o.onGenerated?.(reason);
  if (cache !== undefined && final !== undefined && o.announce !== undefined) await o.announce(cache);
  if (final !== undefined) await write(res, sseData(JSON.stringify(cache === undefined ? final : { ...final, cache })));
  if (reason === "cancelled") o.log.info({ completion_tokens: completion }, "decode.early_termination");
  res.end();
  return { reason, completionTokens: completion, ...(failure ? { error: failure } : {}) };
}

/** Writes and waits for the socket to take it; false once the peer is gone. */
async function write(res: ServerResponse, chunk: string): Promise<boolean> {
  if (res.destroyed || res.writableEnded) return false;
  if (res.write(chunk)) return true;
  const ac = new AbortController();
  try {
    await Promise.race([once(res, "drain", { signal: ac.signal }), once(res, "close", { signal: ac.signal })]);
  } catch {
    return false;
  } finally {
    ac.abort();
  }
  return !res.destroyed;
}

/** Under a JSON schema generation ends where the JSON closes; when text may answer instead, only a root object is JSON. */
function jsonEndOf(s: SamplingParams): boolean | "object" {
  if (s.json_schema === undefined) return false;
  return s.json_schema_or_text === true ? "object" : true;
}
