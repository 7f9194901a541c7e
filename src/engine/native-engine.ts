import { readFileSync } from "node:fs";
import { getLlama, LlamaLogLevel, readGgufFileInfo, type Llama, type LlamaModel, type Token } from "node-llama-cpp";
import type { Logger } from "../common/logger.js";
import { ServingError } from "../protocol/serving-error.js";
import type { ChatMessage } from "../protocol/chat.js";
import type { SamplingParams } from "../protocol/sampling.js";
import { ChatTemplate, type TemplateTool } from "./chat-template.js";
import type { ToolCallSyntax } from "./tool-call-syntax.js";
import type { ToolChatMessage } from "../protocol/tools/worker-tools.js";
import { chooseCpuBackend, cpuFlagsOf, dominantWeightType, preferredCpuVariants, rowLengthsFromMetadata } from "./cpu-variant.js";
import { TINY_MODEL_BYTES } from "./engine-tuning.js";
import type { Engine, EngineInfo, GenerateOptions, RenderedChat, TokenLogprobs } from "./engine.js";
import { grammarKey, jsonSchemaGrammar, withTextAnswer } from "./json-grammar.js";
import { kvStateIdentity, modelFileIdentity } from "./kv-state-identity.js";
import { flattenMetadata, kvBytesPerToken, kvShapeFromMetadata } from "./kv-accounting.js";
import { EventKind, loadNativeBinding, type NativeEngineHandle, type NativeSampling } from "./native-binding.js";
import { nativeSampling } from "./native-sampling.js";
import { NativeSequence } from "./native-sequence.js";
import { nativeErrorToServing } from "./native-errors.js";
import { VocabularyCoverage, vocabularyFromMetadata } from "./vocabulary-coverage.js";
import { checkGrammarLimits } from "../protocol/grammar-limits.js";
import { checkGrammarCoverage } from "./grammar-coverage.js";

/**
 * The native engine: our own decode loop in C++ (native/), over the llama.cpp libraries that
 * node-llama-cpp ships, on its own thread. One llama_decode per step carries the next token of every
 * generating sequence (and prompt chunks of prefilling ones); each step's tokens reach JavaScript in
 * one batched callback. Greedy requests skip llama.cpp's sampler chain (an argmax suffices). CPU
 * only: GPU serving stays with the node-llama-cpp engine.
 *
 * What is not on the per-token path comes from node-llama-cpp, over a vocabulary-only load of the
 * same file (no weights): chat templates, JSON schemas as grammars and the list of control tokens,
 * so that both engines render, constrain and tokenize alike.
 */
export interface NativeEngineOptions {
  modelPath: string;
  modelId: string;
  /** Threads for generation steps and for prompt processing. */
  threads: number;
  threadsBatch: number;
  parallel: number;
  /** Per sequence, tokens; "auto": the training context, at most 4096. */
  contextSize: number | "auto";
  batchSize: number;
  /** CPU thread pool polling, 0–100 (0: idle threads sleep at once). */
  poll: number;
  /** Which llama.cpp CPU kernels to load (see chooseCpuBackend). */
  cpuBackend: "auto" | "native" | "prebuilt";
  /** Size of the model file (bytes), which that choice depends on. */
  modelBytes: number;
  log: Logger;
}

const AUTO_CONTEXT_CAP = 4096;

function readCpuinfo(): string {
  try {
    return readFileSync("/proc/cpuinfo", "utf8");
  } catch {
    return "";
  }
}
/** Tokens a sequence may be generated ahead of its consumer (the rest waits in the bounded channel). */
const CREDIT_TOKENS = 16;

export async function createNativeEngine(o: NativeEngineOptions): Promise<Engine> {
  const loaded = loadNativeBinding();
  if (!loaded.ok) throw new Error(loaded.reason);
  const file = await readGgufFileInfo(o.modelPath, { readTensorInfo: true });
  const meta = flattenMetadata(file.metadata);
  const backend = chooseCpuBackend({
    setting: o.cpuBackend,
    built: loaded.cpuBackend,
    runningFlags: cpuFlagsOf(readCpuinfo()),
    modelBytes: o.modelBytes,
    tinyModelBytes: TINY_MODEL_BYTES,
    prebuiltPreference: preferredCpuVariants({ weightType: dominantWeightType(file.fullTensorInfo ?? []), rowLengths: rowLengthsFromMetadata(meta) }),
  });
  // Before node-llama-cpp loads anything: it then uses the CPU backend registered here (one per
  // process: the first engine's choice holds for the process).
  if (!loaded.binding.loadBackend(loaded.backendDir, backend.preferred)) throw new Error("llama.cpp's CPU backend could not be loaded");
  const llama = await getLlama({
    gpu: false, build: "never", maxThreads: 1, progressLogs: false, logLevel: LlamaLogLevel.error,
    logger: (level, message) => {
      const text = message.trim();
      if (text !== "") o.log.warn({ llama_level: level, text }, "llama.log");
    },
  });
  const vocab = await llama.loadModel({ modelPath: o.modelPath, vocabOnly: true });
  const arch = typeof meta["general.architecture"] === "string" ? meta["general.architecture"] : "llama";
  const train = Number(meta[`${arch}.context_length`] ?? AUTO_CONTEXT_CAP);
  const ctx = o.contextSize === "auto" ? Math.min(train, AUTO_CONTEXT_CAP) : o.contextSize;
  let engine: NativeEngine | undefined;
  const handle = new loaded.binding.NativeEngine(
    {
      modelPath: o.modelPath, parallel: o.parallel, ctxPerSeq: ctx, batch: Math.min(o.batchSize, ctx),
      threads: o.threads, threadsBatch: o.threadsBatch, poll: o.poll,
    },
    (ints, texts, logprobs) => engine?.onEvents(ints, texts, logprobs),
  );
  const native = handle.info();
  const info: EngineInfo = {
    engine: "native",
    modelId: o.modelId,
    modelPath: o.modelPath,
    contextSize: native.contextSize,
    kvBytesPerToken: kvBytesPerToken(kvShapeFromMetadata(meta)),
    parallel: o.parallel,
    threads: o.threads,
    cpuBackend: backend.kind,
    trainContextSize: native.trainContextSize,
    vocabSize: native.vocabSize,
    kvStateIdentity: kvStateIdentity({
      model: modelFileIdentity(o.modelPath), engine: `native/llama.cpp ${loaded.release}`, contextSize: native.contextSize,
      kvLayout: kvShapeFromMetadata(meta),
    }),
  };
  const source = vocabularyFromMetadata(file.metadata) ?? vocabularyFromMetadata(vocab.fileInfo.metadata);
  const coverage = new VocabularyCoverage(source ?? { model: "", tokens: [] });
  engine = new NativeEngine(handle, info, native.bos, native.addBos, llama, vocab, coverage, o.log);
  o.log.info({ cpu_backend: loadedCpuBackend(), choice: backend.kind, reason: backend.reason }, "engine.native");
  return engine;
}

/** The libggml-cpu build this process loaded (Linux: from its memory map), for the logs. */
function loadedCpuBackend(): string | undefined {
  try {
    return /libggml-cpu-[\w-]+\.so/.exec(readFileSync("/proc/self/maps", "utf8"))?.[0];
  } catch {
    return undefined;
  }
}

class NativeEngine implements Engine {
  readonly sequences: NativeSequence[];
  readonly credit = CREDIT_TOKENS;
  private readonly grammars = new Map<string, Promise<string>>();
  private closed = false;
  private chat: ChatTemplate | undefined;
  private control: number[] | undefined;

  constructor(
    readonly handle: NativeEngineHandle,
    readonly info: EngineInfo,
    private readonly bos: number,
    private readonly addBos: boolean,
    private readonly llama: Llama,
    /** The same GGUF loaded without weights, for node-llama-cpp's tokenizer-level helpers. */
    private readonly vocab: LlamaModel,
    /** What text the vocabulary can tokenize, checked before the native tokenizer runs. */
    readonly coverage: VocabularyCoverage,
    private readonly log: Logger,
  ) {
    this.sequences = Array.from({ length: info.parallel }, (_, i) => new NativeSequence(this, i));
  }

  tokenize(text: string): number[] {
    this.coverage.check(text, this.info.contextSize, "the prompt", "prompt");
    let ids: Int32Array;
    try {
      ids = this.handle.tokenize(text, false);
    } catch (err) {
      throw nativeErrorToServing(err, "prompt");
    }
    const tokens = Array.from(ids);
    if (this.addBos && this.bos >= 0 && tokens[0] !== this.bos) tokens.unshift(this.bos);
    return tokens;
  }

  renderChat(messages: readonly ChatMessage[]): RenderedChat {
    return this.template().render(messages);
  }

  renderToolChat(messages: readonly ToolChatMessage[], tools: readonly TemplateTool[]): { rendered: RenderedChat; syntax: ToolCallSyntax } | undefined {
    return this.template().renderToolChat(messages, tools);
  }

  private template(): ChatTemplate {
    this.chat ??= new ChatTemplate({
      fileInfo: this.vocab.fileInfo, tokenizer: this.vocab.tokenizer, bosString: this.vocab.tokens.bosString, filename: this.vocab.filename,
      checkText: (text, where) => this.coverage.check(text, this.info.contextSize, where, "messages"),
    });
    return this.chat;
  }

  /** Special tokens that do not end generation (computed once: one pass over the vocabulary). */
  private controlTokens(): readonly number[] {
    if (this.control === undefined) {
      const out: number[] = [];
      for (let t = 0; t < this.info.vocabSize; t++) {
        if (this.vocab.isSpecialToken(t as Token) && !this.vocab.isEogToken(t as Token)) out.push(t);
      }
      this.control = out;
    }
    return this.control;
  }

  async validateSampling(s: SamplingParams): Promise<void> {
    await this.grammarFor(s);
  }

  samplingFor(opts: GenerateOptions): NativeSampling | Promise<NativeSampling> {
    const s = opts.sampling;
    if (s.grammar === undefined && s.json_schema === undefined) return nativeSampling(s, undefined);
    // Under a grammar, control tokens (BOS, UNK, …) would match as their literal text ("<s>") while
    // they decode to nothing, parting the grammar's state from the output: they are banned.
    return this.grammarFor(s).then((g) => nativeSampling(s, g, this.controlTokens()));
  }

  /** The request's grammar as GBNF, checked by llama.cpp's parser (cached); a bad one is the client's error. */
  private async grammarFor(s: SamplingParams): Promise<string | undefined> {
    if (s.grammar === undefined && s.json_schema === undefined) return undefined;
    const param = s.grammar !== undefined ? "grammar" : "json_schema";
    const key = grammarKey(s);
    let p = this.grammars.get(key);
    if (p === undefined) {
      p = (async () => {
        const gbnf = s.grammar ?? withTextAnswer(s, await this.schemaGrammar(s.json_schema!));
        // Before llama.cpp's parser, which recurses per nesting level (a deep grammar overflows its stack).
        checkGrammarLimits(gbnf, param);
        checkGrammarCoverage(gbnf, this.coverage, param);
        const problem = this.handle.checkGrammar(gbnf);
        if (problem !== undefined) throw new Error(problem);
        return gbnf;
      })();
      // Failures stay cached too: parsing is a pure function of the text (and llama.cpp prints
      // each parse error to stderr, which a client repeating a bad grammar should not flood).
      if (this.grammars.size >= 64) this.grammars.delete(this.grammars.keys().next().value!);
      this.grammars.set(key, p);
      p.catch(() => undefined);
    }
    try {
      return await p;
    } catch (err) {
      if (err instanceof ServingError) throw err;
      throw new ServingError("invalid_grammar", `'${param}' could not be compiled: ${(err as Error).message}`, { param });
    }
  }

  /** A JSON schema as GBNF, by our compiler (json-grammar.ts). */
  private async schemaGrammar(schema: NonNullable<SamplingParams["json_schema"]>): Promise<string> {
    const anyJson = Object.keys(schema).length === 0 ? (await this.llama.getGrammarFor("json")).grammar : "";
    return jsonSchemaGrammar(schema, () => anyJson);
  }

  /** Events of one or more decode steps: 5 integers each (sequence, kind, token, a, b). */
  onEvents(ints: Int32Array, texts: string[], logprobs?: (TokenLogprobs | undefined)[]): void {
    let t = 0;
    for (let i = 0; i < ints.length; i += 5) {
      const seq = this.sequences[ints[i]!];
      const kind = ints[i + 1]!;
      try {
        if (kind === EventKind.Token) {
          seq?.onToken(ints[i + 2]!, texts[t]!, logprobs?.[t]);
          t++;
        }
        else if (kind === EventKind.Done) seq?.onDone(ints[i + 3]!, ints[i + 2]!);
        else if (kind === EventKind.Prefilled) seq?.onPrefilled(ints[i + 3]!, ints[i + 2]!, ints[i + 4]!);
        else if (kind === EventKind.Cleared) seq?.onCleared();
      } catch (err) {
        // A consumer's bug must not take the other sequences' events down with it.
        this.log.error({ err, seq: ints[i] }, "native.event_failed");
      }
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.handle.close();
    for (const s of this.sequences) s.abandon();
    // The Llama object stays: node-llama-cpp shares its binding between the Llama objects of a
    // process, and disposing one would pull it from under another engine in the same process.
    await this.vocab.dispose();
  }
}
