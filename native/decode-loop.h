// The decode loop of one engine, on its own thread: each step is ONE llama_decode holding the next
// token of every generating sequence that has credit, plus prompt tokens of prefilling sequences up
// to the batch size. A prefill evaluates the whole prompt and keeps the logits of its last token:
// a generation's first token is sampled from them at once, on the caller's thread (`sampleFirst`),
// without waiting for a step. JavaScript talks to it only through commands (queued, applied between steps)
// and events (collected per step, handed over in one batch).
//
// Prefix sharing: a prefill whose prompt begins with tokens another sequence holds copies their KV
// (llama_memory_seq_cp) instead of evaluating them.
//
// KV placement: each sequence's cache lives in a llama.cpp sequence (`kv`) assigned when it first
// holds tokens, the lowest free one. With one KV stream per sequence, llama.cpp splits a batch into
// one computation per run of consecutive sequence ids, so keeping the busy ones packed at the low
// ids (and the batch in id order) keeps a step to one pass over the weights.
//
// Flow control: a generating sequence holds `credit` tokens it may still produce before its
// consumer takes them; at zero it sits out the steps until `grant` gives more. Cancel and clear
// take effect before the next step, so at most the step in flight completes.
//
// Failures: no C++ exception leaves the loop thread (it would terminate the process). One thrown
// while a sequence's command is applied or its token sampled ends that sequence with an Error; one
// thrown by a step's llama_decode ends every sequence in that step; the loop goes on.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "llama.h"
#include "token-sampler.h"
#include "utf8-stream.h"

enum class EventKind : int32_t { Token = 0, Done = 1, Prefilled = 2, Cleared = 3 };
// Error: llama.cpp failed (the sequence's KV is dropped). DeadEnd: the request's grammar and
// logit bias left no token allowed (the KV stays valid).
enum class DoneReason : int32_t { Stop = 0, Length = 1, Cancelled = 2, Error = 3, DeadEnd = 4 };
enum class PrefillStatus : int32_t { Ok = 0, Cancelled = 1, Failed = 2 };

// A token's logprobs as they leave the loop: the pieces are the tokens' bytes (OpenAI's `bytes`).
struct EventLogprobs {
  struct Entry {
    llama_token id;
    float logprob;
    std::string piece;
  };
  bool present = false;
  Entry chosen{0, 0.0f, {}};
  std::vector<Entry> top;  // most likely first
};

struct LoopEvent {
  int32_t seq;
  EventKind kind;
  // Token: the token id. Done, Prefilled: tokens whose KV the sequence holds now.
  int32_t token;
  // Done: DoneReason. Prefilled: PrefillStatus.
  int32_t a;
  // Prefilled: prompt tokens reused from the KV already held.
  int32_t b;
  // Token: the text this token completes (may be empty).
  std::string text;
  // Token: when the sampler was asked for logprobs.
  EventLogprobs logprobs;
};

struct LoopConfig {
  int32_t parallel;
  int32_t ctxPerSeq;  // tokens one sequence may hold
  int32_t batch;      // tokens per llama_decode
};

class DecodeLoop {
 public:
  // `notify` is called from the loop thread when events become available after a quiet period.
  DecodeLoop(llama_context* ctx, LoopConfig config, std::function<void()> notify);
  ~DecodeLoop();
  DecodeLoop(const DecodeLoop&) = delete;
  DecodeLoop& operator=(const DecodeLoop&) = delete;

  // Makes `seq` hold `tokens` (at least one), reusing the longest common prefix it already holds.
  void prefill(int32_t seq, std::vector<llama_token> tokens);
  struct FirstToken {
    bool ok;  // false: the sequence holds no logits (not just prefilled)
    llama_token token;
    bool end;  // an end-of-generation token (not to be emitted)
    std::string text;
    bool deadEnd = false;  // no token allowed (see TokenSampler): nothing was generated
    EventLogprobs logprobs;
  };
  // Samples the first token of a generation from the logits its prefill kept. Called on the
  // JavaScript thread after the Prefilled event and before any other command for `seq`: the loop
  // does not touch an idle sequence's logits or text state, so no lock is needed.
  FirstToken sampleFirst(int32_t seq, TokenSampler& sampler);
  // Continues a generation after `first` (from sampleFirst): evaluates it, samples, and so on
  // until an end token, `maxTokens` more tokens or cancel.
  void generate(int32_t seq, std::unique_ptr<TokenSampler> sampler, llama_token first, int32_t maxTokens, int32_t credit);
  void grant(int32_t seq, int32_t tokens);
  void cancel(int32_t seq);
  void clear(int32_t seq);
  // Events since the last call, in order.
  std::vector<LoopEvent> takeEvents();
  // Stops the thread after the step in flight; idempotent.
  void stop();
  // KV state of one sequence (sequence-state.cpp), for the worker's KV tiers. Queued like a
  // command and run on the loop thread between two steps (before the next batch is built), in
  // order with the commands queued before it; its result comes back with the events
  // (takeStateResults). Save: the bytes llama.cpp's per-sequence state API gives and the tokens they
  // hold; rc 1 done, 0 nothing to save (not idle, empty). Restore: replaces what the sequence
  // holds; rc 1 done, 0 refused (the state does not fit: the sequence now holds nothing), -1 busy
  // (not idle, or a staged KV copy could not land: untouched).
  struct StateOp {
    uint32_t id = 0;  // the caller's, to match the result
    bool save = false;
    int32_t seq = -1;
    std::vector<uint8_t> bytes;  // restore: in; save: out
    std::vector<llama_token> tokens;
    int32_t rc = -1;
  };
  void queueState(StateOp op);
  std::vector<StateOp> takeStateResults();

 private:
  enum class CommandKind { Prefill, Generate, Grant, Cancel, Clear, State };
  struct Command {
    CommandKind kind;
    int32_t seq;
    std::vector<llama_token> tokens;
    std::unique_ptr<TokenSampler> sampler;
    llama_token first;
    int32_t n;  // Generate: max tokens; Grant: tokens
    int32_t credit;
    std::unique_ptr<StateOp> op;  // State
  };
  enum class SeqState { Idle, Prefilling, Generating };
  struct Seq {
    SeqState state = SeqState::Idle;
    llama_seq_id kv = -1;  // the llama.cpp sequence holding this one's cache; -1: none
    std::vector<llama_token> held;  // tokens whose KV is in the cache, positions 0..held.size()-1
    // Prefilling
    std::vector<llama_token> pending;
    size_t pendingPos = 0;
    int32_t reused = 0;
    // Logits of the last prompt token, kept by a completed prefill for the first sample.
    std::vector<float> logits;
    bool hasLogits = false;
    // Generating: each token comes from evaluating `next`.
    llama_token next = 0;
    std::unique_ptr<TokenSampler> sampler;
    int32_t remaining = 0;
    int32_t credit = 0;
    Utf8Stream text;
  };

  void run();
  void push(Command c);
  void apply(Command& c);
  void failCommand(Command& c);
  void failAll();
  bool hasWork() const;
  void step();
  void accept(int32_t seq, llama_token token);
  EventLogprobs logprobsOf(const TokenSampler& sampler, llama_token token) const;
  bool isEnd(llama_token token) const;
  void finish(int32_t seq, DoneReason reason);
  void endPrefill(int32_t seq, PrefillStatus status);
  void dropKv(int32_t seq);
  // Copies the KV of the longest prefix of `tokens` another sequence holds, when it is longer than
  // `common` (what `seq` holds already); returns the tokens `seq` holds now. One prompt's n choices
  // and prompts with a shared beginning are evaluated once.
  size_t shareKv(int32_t seq, const std::vector<llama_token>& tokens, size_t common);
  llama_seq_id placeKv(int32_t seq);
  void publish();

  llama_context* ctx_;
  const llama_vocab* vocab_;
  LoopConfig config_;
  std::function<void()> notify_;
  llama_batch batch_;
  std::vector<Seq> seqs_;
  std::vector<int32_t> owner_;  // llama.cpp sequence id → our sequence, or -1
  int32_t roundRobin_ = 0;
  std::vector<LoopEvent> pendingEvents_;  // loop thread only

  // Set when shareKv staged a cross-stream llama_memory_seq_cp: llama.cpp copies the cell metadata
  // at once but the K/V bytes only at the next llama_decode, so until one succeeds a stream's state
  // is not what its cells say: a state op lands it first. Loop thread only.
  bool kvCopyStaged_ = false;
  llama_seq_id stagedKv_ = -1;  // the last staged copy's destination
  // Lands a staged copy when no decode followed it (one token evaluated and removed again).
  void landStagedCopy();
  // sequence-state.cpp, loop thread: runs one queued save or restore (never throws).
  void runState(StateOp& op);
  bool saveNow(int32_t seq, std::vector<uint8_t>& bytes, std::vector<llama_token>& tokens);
  int32_t restoreNow(int32_t seq, const uint8_t* bytes, size_t size, const std::vector<llama_token>& tokens);
  std::vector<StateOp> pendingStates_;  // loop thread only, published with the events
  std::mutex mu_;  // guards commands_, stopping_
  std::condition_variable cv_;
  std::vector<Command> commands_;
  bool stopping_ = false;

  std::mutex outMu_;  // guards outbox_, stateOutbox_, notified_
  std::vector<LoopEvent> outbox_;
  std::vector<StateOp> stateOutbox_;
  bool notified_ = false;

  std::thread thread_;
};
