// JavaScript binding of the native engine: `loadBackend(dir)` and class `NativeEngine`. Every call
// from JavaScript only queues a command for the decode loop (no llama.cpp work on the event loop
// thread besides tokenization); the loop's events come back in one callback per batch of steps.
//
// No C++ exception may cross into N-API (built without C++ exceptions there, it would terminate the
// process): every entry point runs through `guard`, which turns one into a JavaScript Error with
// a `code` naming whose fault it was: `unsupported_characters` (text the vocabulary cannot
// tokenize), `invalid_grammar`, `grammar_dead_end` (no token allowed), `engine_failed` (ours).
#include <napi.h>

#include <atomic>
#include <cmath>
#include <cstdio>
#include <memory>
#include <stdexcept>
#include <string>
#include <unordered_map>
#include <vector>

#include "decode-loop.h"
#include "engine-context.h"
#include "token-sampler.h"

namespace {

// Set while a client's grammar is parsed: its syntax errors are the client's, answered as a 400.
std::atomic<bool> quiet{false};

void logToStderr(ggml_log_level level, const char* text, void*) {
  // Load-time notices and warnings are expected; only errors are worth a line.
  if (level == GGML_LOG_LEVEL_ERROR && !quiet.load(std::memory_order_relaxed)) std::fprintf(stderr, "llama.cpp: %s", text);
}

// An error whose code the TypeScript side maps to a client answer (see native-errors.ts).
struct CodedError : std::runtime_error {
  CodedError(const char* code, const std::string& message) : std::runtime_error(message), code(code) {}
  const char* code;
};

void throwCoded(Napi::Env env, const char* code, const std::string& message) {
  Napi::Error e = Napi::Error::New(env, message);
  e.Set("code", Napi::String::New(env, code));
  e.ThrowAsJavaScriptException();
}

template <typename F>
Napi::Value guard(Napi::Env env, F&& body) {
  try {
    return body();
  } catch (const CodedError& e) {
    throwCoded(env, e.code, e.what());
  } catch (const std::exception& e) {
    throwCoded(env, "engine_failed", std::string("llama.cpp failed: ") + e.what());
  } catch (...) {
    throwCoded(env, "engine_failed", "llama.cpp failed");
  }
  return env.Undefined();
}

struct QuietScope {
  QuietScope() { quiet.store(true); }
  ~QuietScope() { quiet.store(false); }
};

int32_t intOr(const Napi::Object& o, const char* key, int32_t fallback) {
  Napi::Value v = o.Get(key);
  return v.IsNumber() ? v.As<Napi::Number>().Int32Value() : fallback;
}

float floatOr(const Napi::Object& o, const char* key, float fallback) {
  Napi::Value v = o.Get(key);
  return v.IsNumber() ? v.As<Napi::Number>().FloatValue() : fallback;
}

class NativeEngine : public Napi::ObjectWrap<NativeEngine> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "NativeEngine",
                       {
                           InstanceMethod<&NativeEngine::Guarded<&NativeEngine::Info>>("info"),
                           InstanceMethod<&NativeEngine::Guarded<&NativeEngine::Tokenize>>("tokenize"),
                           InstanceMethod<&NativeEngine::Guarded<&NativeEngine::CheckGrammar>>("checkGrammar"),
                           InstanceMethod<&NativeEngine::Guarded<&NativeEngine::Prefill>>("prefill"),
                           InstanceMethod<&NativeEngine::Guarded<&NativeEngine::Generate>>("generate"),
                           InstanceMethod<&NativeEngine::Guarded<&NativeEngine::Grant>>("grant"),
                           InstanceMethod<&NativeEngine::Guarded<&NativeEngine::Cancel>>("cancel"),
                           InstanceMethod<&NativeEngine::Guarded<&NativeEngine::Clear>>("clear"),
                           InstanceMethod<&NativeEngine::Guarded<&NativeEngine::Close>>("close"),
                           InstanceMethod<&NativeEngine::Guarded<&NativeEngine::SaveState>>("saveState"),
                           InstanceMethod<&NativeEngine::Guarded<&NativeEngine::RestoreState>>("restoreState"),
                       });
  }

  // new NativeEngine({ modelPath, parallel, ctxPerSeq, batch, threads, threadsBatch, poll }, onEvents)
  // onEvents(ints: Int32Array /* 5 per event: seq, kind, token, a, b */, texts: string[] /* per token event */,
  //          logprobs?: (object | undefined)[] /* per token event, only when some generation asked for them */)
  NativeEngine(const Napi::CallbackInfo& info) : Napi::ObjectWrap<NativeEngine>(info) {
    Napi::Env env = info.Env();
    if (info.Length() < 2 || !info[0].IsObject() || !info[1].IsFunction()) {
      Napi::TypeError::New(env, "NativeEngine(options, onEvents)").ThrowAsJavaScriptException();
      return;
    }
    Napi::Object o = info[0].As<Napi::Object>();
    EngineParams p;
    p.modelPath = o.Get("modelPath").As<Napi::String>().Utf8Value();
    p.parallel = intOr(o, "parallel", 1);
    p.ctxPerSeq = intOr(o, "ctxPerSeq", 1024);
    p.batch = intOr(o, "batch", 512);
    p.threads = intOr(o, "threads", 1);
    p.threadsBatch = intOr(o, "threadsBatch", p.threads);
    p.poll = intOr(o, "poll", 0);
    p.flashAttn = intOr(o, "flashAttn", -1);
    if (o.Get("kvUnified").IsBoolean()) p.kvUnified = o.Get("kvUnified").As<Napi::Boolean>().Value();
    guard(env, [&]() -> Napi::Value {
      std::string error;
      engine_ = EngineContext::create(p, error);
      if (!engine_) throw CodedError("engine_failed", error);
      tsfn_ = Napi::ThreadSafeFunction::New(env, info[1].As<Napi::Function>(), "inference-engine-decode", 0, 1);
      loop_ = std::make_shared<DecodeLoop>(engine_->context(), LoopConfig{p.parallel, (int32_t)llama_n_ctx_seq(engine_->context()), p.batch},
                                           [this] { notify(); });
      parallel_ = p.parallel;
      return env.Undefined();
    });
  }

  ~NativeEngine() override {
    try {
      shutdown();
    } catch (...) {
    }
  }

 private:
  template <Napi::Value (NativeEngine::*Method)(const Napi::CallbackInfo&)>
  Napi::Value Guarded(const Napi::CallbackInfo& info) {
    return guard(info.Env(), [&] { return (this->*Method)(info); });
  }

  void notify() {
    // Called on the loop thread; the weak reference keeps a late call harmless after close().
    // While the loop lives, so does this object (close() and the destructor end it first).
    std::weak_ptr<DecodeLoop> weak = loop_;
    tsfn_.NonBlockingCall([this, weak](Napi::Env env, Napi::Function fn) {
      auto loop = weak.lock();
      if (!loop) return;
      // Not guard(): a JavaScript exception left pending here would be uncaught, ending the process.
      try {
        // Events are taken first: a state op answered now was queued after the commands whose
        // events these are. Its promise settles in a microtask, after onEvents ran.
        std::vector<LoopEvent> events = loop->takeEvents();
        settleStates(env, loop->takeStateResults());
        deliver(env, fn, std::move(events));
      } catch (const std::exception& e) {
        std::fprintf(stderr, "inference-engine: decode events lost: %s\n", e.what());
      }
    });
  }

  static void deliver(Napi::Env env, Napi::Function fn, std::vector<LoopEvent> events) {
    if (events.empty()) return;
    Napi::HandleScope scope(env);
    Napi::Int32Array ints = Napi::Int32Array::New(env, events.size() * 5);
    size_t texts = 0;
    bool anyLogprobs = false;
    for (const auto& e : events) {
      texts += e.kind == EventKind::Token ? 1 : 0;
      anyLogprobs = anyLogprobs || e.logprobs.present;
    }
    Napi::Array textArray = Napi::Array::New(env, texts);
    // Per token event, its logprobs or undefined; only built when some generation asked for them.
    Napi::Array logprobArray = Napi::Array::New(env, anyLogprobs ? texts : 0);
    size_t t = 0;
    for (size_t i = 0; i < events.size(); i++) {
      const LoopEvent& e = events[i];
      ints[i * 5 + 0] = e.seq;
      ints[i * 5 + 1] = (int32_t)e.kind;
      ints[i * 5 + 2] = e.token;
      ints[i * 5 + 3] = e.a;
      ints[i * 5 + 4] = e.b;
      if (e.kind != EventKind::Token) continue;
      if (anyLogprobs) logprobArray.Set(t, e.logprobs.present ? logprobsValue(env, e.logprobs) : env.Undefined());
      textArray.Set(t++, Napi::String::New(env, e.text));
    }
    if (anyLogprobs) fn.Call({ints, textArray, logprobArray});
    else fn.Call({ints, textArray});
  }

  static Napi::Object logprobEntry(Napi::Env env, const EventLogprobs::Entry& e) {
    Napi::Object o = Napi::Object::New(env);
    o.Set("id", e.id);
    o.Set("logprob", (double)e.logprob);
    o.Set("bytes", Napi::Buffer<uint8_t>::Copy(env, reinterpret_cast<const uint8_t*>(e.piece.data()), e.piece.size()));
    return o;
  }

  // { id, logprob, bytes, top: [{ id, logprob, bytes }] }
  static Napi::Value logprobsValue(Napi::Env env, const EventLogprobs& lp) {
    Napi::Object o = logprobEntry(env, lp.chosen);
    Napi::Array top = Napi::Array::New(env, lp.top.size());
    for (size_t k = 0; k < lp.top.size(); k++) top.Set(k, logprobEntry(env, lp.top[k]));
    o.Set("top", top);
    return o;
  }

  bool ready(const Napi::CallbackInfo& info) {
    if (loop_) return true;
    Napi::Error::New(info.Env(), "engine is closed").ThrowAsJavaScriptException();
    return false;
  }

  int32_t seqArg(const Napi::CallbackInfo& info) {
    const int32_t seq = info[0].As<Napi::Number>().Int32Value();
    if (seq < 0 || seq >= parallel_) Napi::RangeError::New(info.Env(), "sequence out of range").ThrowAsJavaScriptException();
    return seq;
  }

  Napi::Value Info(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!ready(info)) return env.Undefined();
    const llama_vocab* vocab = engine_->vocab();
    Napi::Object o = Napi::Object::New(env);
    o.Set("trainContextSize", llama_model_n_ctx_train(engine_->model()));
    o.Set("contextSize", (double)llama_n_ctx_seq(engine_->context()));
    o.Set("vocabSize", llama_vocab_n_tokens(vocab));
    o.Set("bos", llama_vocab_bos(vocab));
    o.Set("eos", llama_vocab_eos(vocab));
    o.Set("addBos", llama_vocab_get_add_bos(vocab));
    o.Set("threads", llama_n_threads(engine_->context()));
    o.Set("threadsBatch", llama_n_threads_batch(engine_->context()));
    return o;
  }

  // tokenize(text, addSpecial): Int32Array
  Napi::Value Tokenize(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!ready(info)) return env.Undefined();
    const std::string text = info[0].As<Napi::String>().Utf8Value();
    const bool addSpecial = info[1].ToBoolean().Value();
    std::vector<llama_token> out(text.size() + 2);
    int32_t n = 0;
    try {
      n = llama_tokenize(engine_->vocab(), text.data(), (int32_t)text.size(), out.data(), (int32_t)out.size(), addSpecial, false);
      if (n < 0) {
        out.resize((size_t)-n);
        n = llama_tokenize(engine_->vocab(), text.data(), (int32_t)text.size(), out.data(), (int32_t)out.size(), addSpecial, false);
      }
    } catch (const std::out_of_range&) {
      // A SentencePiece vocabulary without byte tokens: a character it lacks has no fallback.
      throw CodedError("unsupported_characters", "the text holds a character the model's vocabulary cannot represent");
    }
    if (n < 0) throw CodedError("engine_failed", "tokenization failed");
    Napi::Int32Array arr = Napi::Int32Array::New(env, (size_t)n);
    for (int32_t i = 0; i < n; i++) arr[(size_t)i] = out[(size_t)i];
    return arr;
  }

  // checkGrammar(gbnf): undefined when it parses, else the reason
  Napi::Value CheckGrammar(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!ready(info)) return env.Undefined();
    const std::string gbnf = info[0].As<Napi::String>().Utf8Value();
    QuietScope q;
    llama_sampler* g = nullptr;
    try {
      g = llama_sampler_init_grammar(engine_->vocab(), gbnf.c_str(), "root");
    } catch (const std::exception& e) {
      return Napi::String::New(env, std::string("grammar does not parse: ") + e.what());
    }
    if (g == nullptr) return Napi::String::New(env, "grammar does not parse");
    llama_sampler_free(g);
    return env.Undefined();
  }

  // prefill(seq, tokens: Int32Array)
  Napi::Value Prefill(const Napi::CallbackInfo& info) {
    if (!ready(info)) return info.Env().Undefined();
    const int32_t seq = seqArg(info);
    if (info.Env().IsExceptionPending()) return info.Env().Undefined();
    Napi::Int32Array arr = info[1].As<Napi::Int32Array>();
    std::vector<llama_token> tokens(arr.Data(), arr.Data() + arr.ElementLength());
    loop_->prefill(seq, std::move(tokens));
    return info.Env().Undefined();
  }

  // generate(seq, sampling, maxTokens, credit): { token, text, end, logprobs? } — the first token, sampled at
  // once from the prefill's logits; the loop continues (when neither `end` nor maxTokens is reached)
  Napi::Value Generate(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!ready(info)) return env.Undefined();
    const int32_t seq = seqArg(info);
    if (env.IsExceptionPending()) return env.Undefined();
    Napi::Object s = info[1].As<Napi::Object>();
    SamplingConfig c;
    c.temperature = floatOr(s, "temperature", c.temperature);
    c.topK = intOr(s, "topK", c.topK);
    c.topP = floatOr(s, "topP", c.topP);
    c.minP = floatOr(s, "minP", c.minP);
    if (s.Get("seed").IsNumber()) {
      c.hasSeed = true;
      c.seed = s.Get("seed").As<Napi::Number>().Uint32Value();
    }
    c.penaltyLastN = intOr(s, "penaltyLastN", c.penaltyLastN);
    c.repeatPenalty = floatOr(s, "repeatPenalty", c.repeatPenalty);
    c.presencePenalty = floatOr(s, "presencePenalty", c.presencePenalty);
    c.frequencyPenalty = floatOr(s, "frequencyPenalty", c.frequencyPenalty);
    if (s.Get("biasTokens").IsTypedArray()) {
      Napi::Int32Array ids = s.Get("biasTokens").As<Napi::Int32Array>();
      Napi::Float32Array values = s.Get("biasValues").As<Napi::Float32Array>();
      for (size_t i = 0; i < ids.ElementLength() && i < values.ElementLength(); i++) {
        // -100 and below ban the token, as in the OpenAI API.
        c.bias.push_back(llama_logit_bias{ids[i], values[i] <= -100.0f ? -INFINITY : values[i]});
      }
    }
    if (s.Get("grammar").IsString()) c.grammar = s.Get("grammar").As<Napi::String>().Utf8Value();
    c.topLogprobs = intOr(s, "topLogprobs", -1);
    std::string error;
    std::unique_ptr<TokenSampler> sampler;
    {
      QuietScope q;
      try {
        sampler = TokenSampler::create(engine_->vocab(), c, error);
      } catch (const std::exception& e) {
        error = e.what();
      }
    }
    if (!sampler) throw CodedError(c.grammar.empty() ? "engine_failed" : "invalid_grammar", error);
    const int32_t maxTokens = info[2].As<Napi::Number>().Int32Value();
    const int32_t credit = info[3].As<Napi::Number>().Int32Value();
    DecodeLoop::FirstToken first = loop_->sampleFirst(seq, *sampler);
    if (!first.ok) throw CodedError("engine_failed", "generate() before prefill()");
    if (first.deadEnd) throw CodedError("grammar_dead_end", "no token is allowed: the grammar and logit_bias together exclude every token");
    if (!first.end && maxTokens > 1) loop_->generate(seq, std::move(sampler), first.token, maxTokens - 1, credit - 1);
    Napi::Object out = Napi::Object::New(env);
    out.Set("token", first.token);
    out.Set("text", Napi::String::New(env, first.text));
    out.Set("end", first.end);
    if (first.logprobs.present) out.Set("logprobs", logprobsValue(env, first.logprobs));
    return out;
  }

  Napi::Value Grant(const Napi::CallbackInfo& info) {
    if (!ready(info)) return info.Env().Undefined();
    const int32_t seq = seqArg(info);
    if (!info.Env().IsExceptionPending()) loop_->grant(seq, info[1].As<Napi::Number>().Int32Value());
    return info.Env().Undefined();
  }

  Napi::Value Cancel(const Napi::CallbackInfo& info) {
    if (!ready(info)) return info.Env().Undefined();
    const int32_t seq = seqArg(info);
    if (!info.Env().IsExceptionPending()) loop_->cancel(seq);
    return info.Env().Undefined();
  }

  Napi::Value Clear(const Napi::CallbackInfo& info) {
    if (!ready(info)) return info.Env().Undefined();
    const int32_t seq = seqArg(info);
    if (!info.Env().IsExceptionPending()) loop_->clear(seq);
    return info.Env().Undefined();
  }

  // saveState(seq): Promise<{ bytes: Buffer, tokens: Int32Array } | undefined> (undefined: the
  // sequence is busy or empty). Run by the decode loop between two steps.
  Napi::Value SaveState(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!ready(info)) return env.Undefined();
    const int32_t seq = seqArg(info);
    if (env.IsExceptionPending()) return env.Undefined();
    DecodeLoop::StateOp op;
    op.save = true;
    op.seq = seq;
    return queueState(env, std::move(op));
  }

  // restoreState(seq, bytes: Uint8Array, tokens: Int32Array): Promise<number>: 1 the sequence holds
  // them now, 0 the state does not fit this context (the sequence holds nothing), -1 the sequence
  // is busy or the engine closed (untouched). Run by the decode loop between two steps.
  Napi::Value RestoreState(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!ready(info)) return env.Undefined();
    const int32_t seq = seqArg(info);
    if (env.IsExceptionPending()) return env.Undefined();
    if (!info[1].IsTypedArray() || !info[2].IsTypedArray()) throw CodedError("invalid_argument", "restoreState(seq, Uint8Array, Int32Array)");
    Napi::Uint8Array bytes = info[1].As<Napi::Uint8Array>();
    Napi::Int32Array ids = info[2].As<Napi::Int32Array>();
    const int32_t nVocab = llama_vocab_n_tokens(engine_->vocab());
    DecodeLoop::StateOp op;
    op.seq = seq;
    op.tokens.resize(ids.ElementLength());
    for (size_t i = 0; i < op.tokens.size(); i++) {
      if (ids[i] < 0 || ids[i] >= nVocab) throw CodedError("invalid_token", "token id out of the vocabulary");
      op.tokens[i] = ids[i];
    }
    // A copy: the JavaScript buffer may change or go before the loop reads it.
    op.bytes.assign(bytes.Data(), bytes.Data() + bytes.ByteLength());
    return queueState(env, std::move(op));
  }

  Napi::Value queueState(Napi::Env env, DecodeLoop::StateOp op) {
    Napi::Promise::Deferred deferred = Napi::Promise::Deferred::New(env);
    op.id = nextStateOp_++;
    states_.emplace(op.id, deferred);
    loop_->queueState(std::move(op));
    return deferred.Promise();
  }

  void settleStates(Napi::Env env, std::vector<DecodeLoop::StateOp> results) {
    if (results.empty()) return;
    Napi::HandleScope scope(env);
    for (auto& r : results) {
      auto it = states_.find(r.id);
      if (it == states_.end()) continue;
      Napi::Promise::Deferred d = it->second;
      states_.erase(it);
      if (!r.save) {
        d.Resolve(Napi::Number::New(env, r.rc));
      } else if (r.rc != 1) {
        d.Resolve(env.Undefined());
      } else {
        Napi::Object out = Napi::Object::New(env);
        out.Set("bytes", Napi::Buffer<uint8_t>::Copy(env, r.bytes.data(), r.bytes.size()));
        Napi::Int32Array ids = Napi::Int32Array::New(env, r.tokens.size());
        for (size_t i = 0; i < r.tokens.size(); i++) ids[i] = r.tokens[i];
        out.Set("tokens", ids);
        d.Resolve(out);
      }
    }
  }

  Napi::Value Close(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    shutdown();
    // Ops the stopped loop never ran: nothing saved, nothing restored (the sequence is untouched).
    std::unordered_map<uint32_t, Napi::Promise::Deferred> left;
    left.swap(states_);
    for (auto& [id, d] : left) {
      (void)id;
      d.Resolve(env.Undefined());
    }
    return env.Undefined();
  }

  void shutdown() {
    if (!loop_) return;
    loop_->stop();
    loop_.reset();
    engine_.reset();
    tsfn_.Release();
  }

  std::unique_ptr<EngineContext> engine_;
  std::shared_ptr<DecodeLoop> loop_;
  Napi::ThreadSafeFunction tsfn_;
  int32_t parallel_ = 0;
  // Pending saveState/restoreState promises by op id (JavaScript thread only).
  std::unordered_map<uint32_t, Napi::Promise::Deferred> states_;
  uint32_t nextStateOp_ = 1;
};

// loadBackend(dir, preferred?: string[]): whether a CPU backend is available afterwards
Napi::Value LoadBackendUnguarded(const Napi::CallbackInfo& info) {
  llama_log_set(logToStderr, nullptr);
  const std::string dir = info[0].As<Napi::String>().Utf8Value();
  std::vector<std::string> preferred;
  if (info.Length() > 1 && info[1].IsArray()) {
    Napi::Array a = info[1].As<Napi::Array>();
    for (uint32_t i = 0; i < a.Length(); i++) preferred.push_back(a.Get(i).ToString().Utf8Value());
  }
  const bool ok = ensureCpuBackend(dir, preferred);
  if (ok) llama_backend_init();
  return Napi::Boolean::New(info.Env(), ok);
}

Napi::Value LoadBackend(const Napi::CallbackInfo& info) {
  return guard(info.Env(), [&] { return LoadBackendUnguarded(info); });
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("loadBackend", Napi::Function::New(env, LoadBackend));
  exports.Set("NativeEngine", NativeEngine::Define(env));
  return exports;
}

}  // namespace

NODE_API_MODULE(inference_engine_native, Init)
