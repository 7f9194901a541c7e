import {
  getLlama, readGgufFileInfo, LlamaGrammarEvaluationState, LlamaLogLevel, TokenBias,
  type Llama, type LlamaContext, type LlamaContextSequence, type LlamaGrammar, type LlamaModel, type SequenceEvaluateOptions, type Token,
} from "node-llama-cpp";
import { ServingError } from "../protocol/serving-error.js";
import type { Logger } from "../common/logger.js";
import type { ChatMessage } from "../protocol/chat.js";
import type { SamplingParams } from "../protocol/sampling.js";
import { ChatTemplate, type TemplateTool } from "./chat-template.js";
import type { ToolCallSyntax } from "./tool-call-syntax.js";
import type { ToolChatMessage } from "../protocol/tools/worker-tools.js";
import { grammarKey, jsonSchemaGrammar, withTextAnswer } from "./json-grammar.js";
import type { Engine, EngineInfo, EngineSequence, GenerateOptions, GeneratedToken, PrefillResult, RenderedChat } from "./engine.js";
import { IncrementalDetokenizer } from "./incremental-detokenizer.js";
import { flattenMetadata, kvBytesPerToken, kvShapeFromMetadata } from "./kv-accounting.js";
import { boundedSampling } from "./sampling-bounds.js";
import { refuseLogprobs } from "./logprobs-support.js";
import { VocabularyCoverage, vocabularyFromMetadata } from "./vocabulary-coverage.js";
import { checkGrammarLimits } from "../protocol/grammar-limits.js";
import { checkGrammarCoverage } from "./grammar-coverage.js";

/**
 * The llama.cpp engine, through node-llama-cpp. One context holds `parallel` sequences; node-llama-cpp
 * batches the pending evaluations of all sequences into one decode call per event-loop cycle, which
 * is continuous batching: a new session joins the batch at its next step.
 */
export interface LlamaEngineOptions {
  modelPath: string;
  modelId: string;
  threads: number;
  parallel: number;
  /** Per sequence, tokens; "auto": the training context, at most 4096. */
  contextSize: number | "auto";
  batchSize: number;
  gpu: "off" | "auto" | "cuda" | "vulkan";
  log: Logger;
}

const AUTO_CONTEXT_CAP = 4096;
/**
 * The bias that bans a token (logit_bias -100, control tokens under a grammar): finite, unlike
 * node-llama-cpp's "never" (-inf). When a grammar's every allowed token is banned, -inf everywhere
 * makes llama.cpp's grammar sampler throw or abort inside node-llama-cpp's addon; a finite ban
 * leaves the least-bad allowed token, so the generation goes on within the grammar.
 */
const BAN_LOGIT = -1e9;
/** Prompt evaluation is chunked so that an abort is noticed between chunks (tokens). */
const PREFILL_CHUNK = 512;

/** node-llama-cpp brands token ids; ours are plain numbers. */
const asTokens = (t: readonly number[]) => t as unknown as Token[];
const asToken = (t: number) => t as unknown as Token;

export async function createLlamaEngine(opts: LlamaEngineOptions): Promise<Engine> {
  const llama = await getLlama({
    gpu: opts.gpu === "off" ? false : opts.gpu,
    maxThreads: opts.threads,
    // Never compile llama.cpp at run time: the prebuilt binaries are the supported path.
    build: "never",
    progressLogs: false,
    logLevel: LlamaLogLevel.error,
    logger: (level, message) => {
      const text = message.trim();
      if (text !== "") opts.log.warn({ llama_level: level, text }, "llama.log");
    },
  });
  const model = await llama.loadModel({ modelPath: opts.modelPath, gpuLayers: opts.gpu === "off" ? 0 : "auto" });
  const meta = flattenMetadata(model.fileInfo.metadata);
  const bytesPerToken = kvBytesPerToken(kvShapeFromMetadata(meta));
  const wanted = opts.contextSize === "auto" ? Math.min(model.trainContextSize, AUTO_CONTEXT_CAP) : opts.contextSize;
  const context = await model.createContext({
    contextSize: wanted,
    sequences: opts.parallel,
    threads: opts.threads,
    batchSize: Math.min(opts.batchSize, wanted),
    failedCreationRemedy: false,
  });
  const info: EngineInfo = {
    engine: "llama",
    modelId: opts.modelId,
    modelPath: opts.modelPath,
    contextSize: context.contextSize,
    kvBytesPerToken: bytesPerToken,
    parallel: opts.parallel,
    threads: opts.threads,
    trainContextSize: model.trainContextSize,
    vocabSize: Number(meta["tokenizer.ggml.tokens.length"] ?? (meta["tokenizer.ggml.tokens"] as unknown[] | undefined)?.length ?? 0),
  };
  const vocabulary = vocabularyFromMetadata(model.fileInfo.metadata) ?? vocabularyFromMetadata((await readGgufFileInfo(opts.modelPath)).metadata);
  return new LlamaEngine(llama, model, context, info, new VocabularyCoverage(vocabulary ?? { model: "", tokens: [] }), opts.log);
}

class LlamaEngine implements Engine {
  readonly sequences: LlamaSequence[];
  private readonly grammars = new Map<string, Promise<LlamaGrammar>>();
  private chat: ChatTemplate | undefined;

  constructor(
    readonly llama: Llama,
    readonly model: LlamaModel,
    readonly context: LlamaContext,
    readonly info: EngineInfo,
    /** What text the vocabulary can tokenize: node-llama-cpp's tokenizer aborts on the rest. */
    readonly coverage: VocabularyCoverage,
    readonly log: Logger,
  ) {
    this.sequences = Array.from({ length: info.parallel }, (_, i) => new LlamaSequence(this, context.getSequence(), i));
  }

  tokenize(text: string): number[] {
    this.coverage.check(text, this.info.contextSize, "the prompt", "prompt");
    const tokens = this.model.tokenize(text, false);
    const bos = this.model.tokens.bos;
    if (this.model.tokens.shouldPrependBosToken && bos !== null && tokens[0] !== bos) return [bos, ...tokens];
    return tokens as number[];
  }

  renderChat(messages: readonly ChatMessage[]): RenderedChat {
    return this.template().render(messages);
  }

  renderToolChat(messages: readonly ToolChatMessage[], tools: readonly TemplateTool[]): { rendered: RenderedChat; syntax: ToolCallSyntax } | undefined {
    return this.template().renderToolChat(messages, tools);
  }

  private template(): ChatTemplate {
    this.chat ??= new ChatTemplate({
      fileInfo: this.model.fileInfo, tokenizer: this.model.tokenizer, bosString: this.model.tokens.bosString, filename: this.model.filename,
      checkText: (text, where) => this.coverage.check(text, this.info.contextSize, where, "messages"),
    });
    return this.chat;
  }

  private control: number[] | undefined;

  /** Special tokens that do not end generation (computed once: one pass over the vocabulary). */
  controlTokens(): readonly number[] {
    if (this.control === undefined) {
      const out: number[] = [];
      for (let t = 0; t < this.info.vocabSize; t++) {
        if (this.model.isSpecialToken(asToken(t)) && !this.model.isEogToken(asToken(t))) out.push(t);
      }
      this.control = out;
    }
    return this.control;
  }

  /** A model that emits BOS has begun a new document: treat it as the end, like EOS. */
  isEnd(token: number): boolean {
    return this.model.isEogToken(asToken(token)) || token === this.model.tokens.bos;
  }

  /** Compiles (and caches) the grammar a request asks for; a bad grammar is the client's error. */
  async grammarFor(s: SamplingParams): Promise<LlamaGrammar | undefined> {
    if (s.grammar === undefined && s.json_schema === undefined) return undefined;
    const key = grammarKey(s);
    let p = this.grammars.get(key);
    if (p === undefined) {
      // Before llama.cpp's parser, which recurses per nesting level (a deep grammar overflows its stack).
      if (s.grammar !== undefined) {
        checkGrammarLimits(s.grammar, "grammar");
        checkGrammarCoverage(s.grammar, this.coverage, "grammar");
      }
      p = s.grammar !== undefined
        ? this.llama.createGrammar({ grammar: s.grammar })
        : Object.keys(s.json_schema!).length === 0
          ? this.llama.getGrammarFor("json")
          : this.schemaGrammar(s);
      if (this.grammars.size >= 64) this.grammars.delete(this.grammars.keys().next().value!);
      this.grammars.set(key, p);
      p.catch(() => this.grammars.delete(key));
    }
    try {
      return await p;
    } catch (err) {
      if (err instanceof ServingError) throw err;
      const param = s.grammar !== undefined ? "grammar" : "json_schema";
      throw new ServingError("invalid_grammar", `'${param}' could not be compiled: ${(err as Error).message}`, { param });
    }
  }

  /** A schema's grammar, by our compiler (json-grammar.ts), with the text alternative for tool_choice "auto". */
  private async schemaGrammar(s: SamplingParams): Promise<LlamaGrammar> {
    const schema = s.json_schema!;
    const anyJson = Object.keys(schema).length === 0 ? (await this.llama.createGrammarForJsonSchema({} as never)).grammar : "";
    const text = withTextAnswer(s, jsonSchemaGrammar(schema, () => anyJson));
    checkGrammarLimits(text, "json_schema");
    checkGrammarCoverage(text, this.coverage, "json_schema");
    return this.llama.createGrammar({ grammar: text });
  }

  async validateSampling(s: SamplingParams): Promise<void> {
    // node-llama-cpp's sampler does not expose the distribution after its penalties and bias, the
    // one logprobs must report: refused rather than approximated.
    if (s.top_logprobs !== undefined) refuseLogprobs("llama");
    await this.grammarFor(s);
  }

  async close(): Promise<void> {
    await this.context.dispose();
    await this.model.dispose();
    await this.llama.dispose();
  }
}

class LlamaSequence implements EngineSequence {
  constructor(
    private readonly engine: LlamaEngine,
    private readonly seq: LlamaContextSequence,
    readonly index: number,
  ) {}

  heldTokens(): readonly number[] {
    return this.seq.contextTokens as readonly number[];
  }

  async prefill(tokens: readonly number[], signal: AbortSignal): Promise<PrefillResult> {
    // The last prompt token is evaluated by the first decode step, which samples from its logits.
    const target = tokens.slice(0, -1);
    this.lastPromptToken = tokens[tokens.length - 1];
    const held = this.seq.contextTokens as readonly number[];
    let common = 0;
    while (common < held.length && common < target.length && held[common] === target[common]) common++;
    if (common < held.length) await this.seq.eraseContextTokenRanges([{ start: common, end: held.length }]);
    for (let i = common; i < target.length; i += PREFILL_CHUNK) {
      if (signal.aborted) throw new ServingError("internal", "prefill aborted");
      await this.seq.evaluateWithoutGeneratingNewTokens(asTokens(target.slice(i, i + PREFILL_CHUNK)));
    }
    // The final prompt token counts as reused only when the whole prompt was already held.
    return { evaluated: tokens.length - common, reused: common };
  }

  async *generate(opts: GenerateOptions): AsyncIterable<GeneratedToken> {
    const { engine } = this;
    const model = engine.model;
    const held = this.seq.contextTokens as readonly number[];
    const last = this.lastPromptToken;
    if (last === undefined) throw new Error("generate() before prefill()");
    const s = boundedSampling(opts.sampling);
    const grammar = await engine.grammarFor(s);
    const generated: number[] = [];
    const evalOpts: SequenceEvaluateOptions = {
      temperature: s.temperature ?? 0.8,
      ...(s.top_k !== undefined ? { topK: s.top_k <= 0 ? 0 : s.top_k } : {}),
      ...(s.top_p !== undefined ? { topP: s.top_p } : {}),
      ...(s.min_p !== undefined ? { minP: s.min_p } : {}),
      ...(s.seed !== undefined ? { seed: s.seed >>> 0 } : {}),
    };
    if (s.repeat_penalty !== undefined || s.presence_penalty || s.frequency_penalty) {
      evalOpts.repeatPenalty = {
        punishTokens: () => asTokens(generated.slice(-64)),
        penalty: s.repeat_penalty ?? 1,
        presencePenalty: s.presence_penalty ?? 0,
        frequencyPenalty: s.frequency_penalty ?? 0,
      };
    }
    if (s.logit_bias !== undefined || grammar !== undefined) {
      const bias = new TokenBias(model.tokenizer);
      // Under a grammar, control tokens (BOS, UNK, …) match as their literal text ("<s>") while
      // they decode to nothing: the grammar's state and the output would part ways. Only the
      // end-of-generation tokens stay, which the grammar allows where the output may end.
      if (grammar !== undefined) for (const t of engine.controlTokens()) bias.set(asToken(t), { logit: BAN_LOGIT });
      for (const [id, b] of Object.entries(s.logit_bias ?? {})) {
        // Ids past the vocabulary are ignored, as by the native engine (node-llama-cpp would throw).
        if (Number(id) >= engine.info.vocabSize) continue;
        bias.set(asToken(Number(id)), { logit: b <= -100 ? BAN_LOGIT : b });
      }
      evalOpts.tokenBias = bias;
    }
    if (grammar !== undefined) evalOpts.grammarEvaluationState = new LlamaGrammarEvaluationState({ model, grammar });
    const detok = new IncrementalDetokenizer((t, ctx) => model.detokenize(asTokens(t), false, asTokens(ctx)), [...held, last]);
    let count = 0;
    for await (const token of this.seq.evaluate([asToken(last)], evalOpts)) {
      if (engine.isEnd(token)) return;
      generated.push(token);
      yield { id: token, text: detok.push(token) };
      if (++count >= opts.maxTokens || opts.signal.aborted) return;
    }
  }

  /** The prompt's final token, held back by prefill() for the first decode step. */
  private lastPromptToken: number | undefined;

  async clear(): Promise<void> {
    this.lastPromptToken = undefined;
    await this.seq.clearHistory();
  }
}
