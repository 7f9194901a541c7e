#include "decode-loop.h"

#include <algorithm>

namespace {

// Shortest prefix (tokens) worth copying from another sequence rather than evaluating.
constexpr size_t kMinSharedTokens = 8;

void batchAdd(llama_batch& b, llama_token token, llama_pos pos, llama_seq_id seq, bool output) {
  const int32_t i = b.n_tokens++;
  b.token[i] = token;
  b.pos[i] = pos;
  b.n_seq_id[i] = 1;
  b.seq_id[i][0] = seq;
  b.logits[i] = output ? 1 : 0;
}

std::string pieceOf(const llama_vocab* vocab, llama_token token) {
  char buf[128];
  int32_t n = llama_token_to_piece(vocab, token, buf, sizeof buf, 0, false);
  if (n >= 0) return std::string(buf, (size_t)n);
  std::string big((size_t)-n, '\0');
  n = llama_token_to_piece(vocab, token, big.data(), (int32_t)big.size(), 0, false);
  big.resize(n > 0 ? (size_t)n : 0);
  return big;
}

}  // namespace

DecodeLoop::DecodeLoop(llama_context* ctx, LoopConfig config, std::function<void()> notify)
    : ctx_(ctx),
      vocab_(llama_model_get_vocab(llama_get_model(ctx))),
      config_(config),
      notify_(std::move(notify)),
      batch_(llama_batch_init(config.batch, 0, 1)),
      seqs_((size_t)config.parallel),
      owner_((size_t)config.parallel, -1) {
  thread_ = std::thread([this] { run(); });
}

DecodeLoop::~DecodeLoop() {
  stop();
  llama_batch_free(batch_);
}

void DecodeLoop::stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_.notify_one();
  if (thread_.joinable()) thread_.join();
}

void DecodeLoop::push(Command c) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    commands_.push_back(std::move(c));
  }
  cv_.notify_one();
}

void DecodeLoop::prefill(int32_t seq, std::vector<llama_token> tokens) {
  push(Command{CommandKind::Prefill, seq, std::move(tokens), nullptr, 0, 0, 0});
}

DecodeLoop::FirstToken DecodeLoop::sampleFirst(int32_t seq, TokenSampler& sampler) {
  if (seq < 0 || seq >= config_.parallel) return FirstToken{false, 0, false, {}};
  Seq& s = seqs_[(size_t)seq];
  if (!s.hasLogits) return FirstToken{false, 0, false, {}};
  s.hasLogits = false;
  const llama_token token = sampler.sample(s.logits.data());
  if (token == LLAMA_TOKEN_NULL) return FirstToken{true, token, true, {}, true};
  if (isEnd(token)) return FirstToken{true, token, true, {}};
  s.text.reset();
  const std::string piece = pieceOf(vocab_, token);
  return FirstToken{true, token, false, s.text.push(piece.data(), piece.size()), false, logprobsOf(sampler, token)};
}

EventLogprobs DecodeLoop::logprobsOf(const TokenSampler& sampler, llama_token token) const {
  EventLogprobs out;
  if (!sampler.wantsLogprobs()) return out;
  const TokenLogprobs& lp = sampler.lastLogprobs();
  out.present = true;
  out.chosen = EventLogprobs::Entry{token, lp.logprob, pieceOf(vocab_, token)};
  out.top.reserve(lp.top.size());
  for (const auto& t : lp.top) out.top.push_back(EventLogprobs::Entry{t.first, t.second, pieceOf(vocab_, t.first)});
  return out;
}

void DecodeLoop::generate(int32_t seq, std::unique_ptr<TokenSampler> sampler, llama_token first, int32_t maxTokens, int32_t credit) {
  push(Command{CommandKind::Generate, seq, {}, std::move(sampler), first, maxTokens, credit});
}

void DecodeLoop::grant(int32_t seq, int32_t tokens) { push(Command{CommandKind::Grant, seq, {}, nullptr, 0, tokens, 0}); }
void DecodeLoop::cancel(int32_t seq) { push(Command{CommandKind::Cancel, seq, {}, nullptr, 0, 0, 0}); }
void DecodeLoop::clear(int32_t seq) { push(Command{CommandKind::Clear, seq, {}, nullptr, 0, 0, 0}); }

bool DecodeLoop::isEnd(llama_token token) const {
  // A model that emits BOS has begun a new document: that ends generation like EOS.
  return llama_vocab_is_eog(vocab_, token) || token == llama_vocab_bos(vocab_);
}

std::vector<LoopEvent> DecodeLoop::takeEvents() {
  std::lock_guard<std::mutex> lock(outMu_);
  notified_ = false;
  std::vector<LoopEvent> out;
  out.swap(outbox_);
  return out;
}

void DecodeLoop::run() {
  std::vector<Command> cmds;
  for (;;) {
    {
      std::unique_lock<std::mutex> lock(mu_);
      // hasWork() reads state only this thread writes.
      cv_.wait(lock, [this] { return stopping_ || !commands_.empty() || hasWork(); });
      if (stopping_) return;
      cmds.swap(commands_);
    }
    for (auto& c : cmds) {
      try {
        apply(c);
      } catch (...) {
        failCommand(c);
      }
    }
    cmds.clear();
    // A save or restore answered now, not after the step that follows (a whole step's wait).
    if (!pendingStates_.empty()) publish();
    try {
      step();
    } catch (...) {
      // step() catches what one sequence causes; this is the rest (e.g. allocation): no sequence
      // can be trusted to be where it thinks.
      failAll();
    }
    // No decode followed a staged copy (its prefill was cancelled in the same batch of
    // commands): land it now, so that the next save or restore need not.
    if (kvCopyStaged_) landStagedCopy();
    publish();
  }
}

bool DecodeLoop::hasWork() const {
  for (const auto& s : seqs_) {
    if (s.state == SeqState::Prefilling) return true;
    if (s.state == SeqState::Generating && s.credit > 0) return true;
  }
  return false;
}

void DecodeLoop::apply(Command& c) {
  if (c.kind == CommandKind::State) {
    // Between two steps: the sequence is in no batch while its KV is read or replaced.
    runState(*c.op);
    pendingStates_.push_back(std::move(*c.op));
    c.op.reset();
    return;
  }
  if (c.seq < 0 || c.seq >= config_.parallel) return;
  Seq& s = seqs_[(size_t)c.seq];
  switch (c.kind) {
    case CommandKind::Prefill: {
      if (s.state == SeqState::Generating) finish(c.seq, DoneReason::Cancelled);
      if (s.state == SeqState::Prefilling) endPrefill(c.seq, PrefillStatus::Cancelled);
      s.hasLogits = false;
      if (c.tokens.empty()) {
        endPrefill(c.seq, PrefillStatus::Failed);
        break;
      }
      // The last token is evaluated even when held: its logits give the first sample.
      size_t common = 0;
      while (common < s.held.size() && common + 1 < c.tokens.size() && s.held[common] == c.tokens[common]) common++;
      if (common < s.held.size()) {
        // A partial removal can fail (e.g. recurrent state): then nothing is reused.
        if (!llama_memory_seq_rm(llama_get_memory(ctx_), s.kv, (llama_pos)common, -1)) {
          dropKv(c.seq);
          common = 0;
        }
        s.held.resize(common);
      }
      placeKv(c.seq);
      common = shareKv(c.seq, c.tokens, common);
      s.pending = std::move(c.tokens);
      s.pendingPos = common;
      s.reused = (int32_t)common;
      s.state = SeqState::Prefilling;
      break;
    }
    case CommandKind::Generate:
      if (s.state == SeqState::Prefilling) endPrefill(c.seq, PrefillStatus::Cancelled);
      if (s.state == SeqState::Generating) finish(c.seq, DoneReason::Cancelled);
      // The text state continues from the first token, sampled by sampleFirst().
      s.state = SeqState::Generating;
      s.next = c.first;
      s.sampler = std::move(c.sampler);
      s.remaining = c.n;
      s.credit = c.credit;
      if (s.remaining <= 0) finish(c.seq, DoneReason::Length);
      break;
    case CommandKind::Grant:
      if (s.state == SeqState::Generating) s.credit += c.n;
      break;
    case CommandKind::Cancel:
      if (s.state == SeqState::Generating) finish(c.seq, DoneReason::Cancelled);
      if (s.state == SeqState::Prefilling) endPrefill(c.seq, PrefillStatus::Cancelled);
      break;
    case CommandKind::State:
      break;
    case CommandKind::Clear:
      if (s.state == SeqState::Generating) finish(c.seq, DoneReason::Cancelled);
      if (s.state == SeqState::Prefilling) endPrefill(c.seq, PrefillStatus::Cancelled);
      dropKv(c.seq);
      s.hasLogits = false;
      pendingEvents_.push_back(LoopEvent{c.seq, EventKind::Cleared, 0, 0, 0, {}});
      break;
  }
}

void DecodeLoop::failCommand(Command& c) {
  if (c.kind == CommandKind::State) {
    if (c.op) pendingStates_.push_back(std::move(*c.op));  // still owes its answer (rc: not done)
    return;
  }
  if (c.seq < 0 || c.seq >= config_.parallel) return;
  Seq& s = seqs_[(size_t)c.seq];
  if (s.state == SeqState::Prefilling) endPrefill(c.seq, PrefillStatus::Failed);
  else if (s.state == SeqState::Generating) finish(c.seq, DoneReason::Error);
  // A command that failed before taking effect still owes its answer (one event per command).
  else if (c.kind == CommandKind::Prefill) endPrefill(c.seq, PrefillStatus::Failed);
  else if (c.kind == CommandKind::Generate) finish(c.seq, DoneReason::Error);
  else if (c.kind == CommandKind::Clear) pendingEvents_.push_back(LoopEvent{c.seq, EventKind::Cleared, 0, 0, 0, {}});
}

void DecodeLoop::failAll() {
  for (int32_t i = 0; i < config_.parallel; i++) {
    const SeqState st = seqs_[(size_t)i].state;
    if (st == SeqState::Prefilling) endPrefill(i, PrefillStatus::Failed);
    else if (st == SeqState::Generating) finish(i, DoneReason::Error);
  }
}

size_t DecodeLoop::shareKv(int32_t seq, const std::vector<llama_token>& tokens, size_t common) {
  Seq& s = seqs_[(size_t)seq];
  if (s.kv < 0) return common;
  int32_t donor = -1;
  size_t best = common;
  for (int32_t j = 0; j < config_.parallel; j++) {
    const Seq& o = seqs_[(size_t)j];
    // A prefilling sequence may itself hold a copy still pending (made at the next llama_decode).
    if (j == seq || o.kv < 0 || o.state == SeqState::Prefilling) continue;
    // The last prompt token is always evaluated (its logits give the first sample).
    size_t k = 0;
    while (k < o.held.size() && k + 1 < tokens.size() && o.held[k] == tokens[k]) k++;
    if (k > best) {
      best = k;
      donor = j;
    }
  }
  // A copy moves the donor's whole KV stream; a few tokens (a BOS, a template's first line) are
  // cheaper to evaluate again.
  if (donor < 0 || best - common < kMinSharedTokens) return common;
  llama_memory_t mem = llama_get_memory(ctx_);
  // The whole donor sequence is copied, then cut at the shared prefix: with one KV stream per
  // sequence llama.cpp copies only whole streams (a partial range would abort), and the copy
  // itself happens at the next llama_decode, before the batch that evaluates the rest.
  llama_memory_seq_rm(mem, s.kv, -1, -1);
  llama_memory_seq_cp(mem, seqs_[(size_t)donor].kv, s.kv, -1, -1);
  kvCopyStaged_ = true;
  stagedKv_ = s.kv;
  if (!llama_memory_seq_rm(mem, s.kv, (llama_pos)best, -1)) {
    llama_memory_seq_rm(mem, s.kv, -1, -1);
    s.held.clear();
    return 0;
  }
  s.held.assign(tokens.begin(), tokens.begin() + (long)best);
  return best;
}

void DecodeLoop::landStagedCopy() {
  // Nothing decoded this iteration, so every sequence is idle. One token is evaluated on the copy's
  // destination at its next free position (llama_decode runs the memory update, which copies the
  // bytes, first), then removed again: what each sequence holds is unchanged.
  const llama_seq_id kv = stagedKv_;
  if (kv < 0 || (size_t)kv >= owner_.size()) return;
  const int32_t i = owner_[(size_t)kv];
  const size_t pos = i >= 0 ? seqs_[(size_t)i].held.size() : 0;
  if ((int32_t)pos >= config_.ctxPerSeq) return;  // stays busy until a later decode
  const llama_token bos = llama_vocab_bos(vocab_);
  const llama_token token = i >= 0 && pos > 0 ? seqs_[(size_t)i].held.back() : bos >= 0 ? bos : 0;
  batch_.n_tokens = 0;
  batchAdd(batch_, token, (llama_pos)pos, kv, false);
  int32_t rc;
  try {
    rc = llama_decode(ctx_, batch_);
  } catch (...) {
    rc = -1;
  }
  llama_memory_seq_rm(llama_get_memory(ctx_), kv, (llama_pos)pos, -1);
  if (rc == 0) kvCopyStaged_ = false;
}

void DecodeLoop::dropKv(int32_t seq) {
  Seq& s = seqs_[(size_t)seq];
  if (s.kv >= 0) {
    llama_memory_seq_rm(llama_get_memory(ctx_), s.kv, -1, -1);
    owner_[(size_t)s.kv] = -1;
    s.kv = -1;
  }
  s.held.clear();
}

llama_seq_id DecodeLoop::placeKv(int32_t seq) {
  Seq& s = seqs_[(size_t)seq];
  if (s.kv >= 0) return s.kv;
  for (size_t id = 0; id < owner_.size(); id++) {
    if (owner_[id] >= 0) continue;
    owner_[id] = seq;
    s.kv = (llama_seq_id)id;
    break;
  }
  return s.kv;
}

void DecodeLoop::finish(int32_t seq, DoneReason reason) {
  Seq& s = seqs_[(size_t)seq];
  s.state = SeqState::Idle;
  s.sampler.reset();
  s.hasLogits = false;
  if (reason == DoneReason::Error) dropKv(seq);
  pendingEvents_.push_back(LoopEvent{seq, EventKind::Done, (int32_t)s.held.size(), (int32_t)reason, 0, {}});
}

void DecodeLoop::endPrefill(int32_t seq, PrefillStatus status) {
  Seq& s = seqs_[(size_t)seq];
  s.state = SeqState::Idle;
  s.pending.clear();
  s.pendingPos = 0;
  if (status == PrefillStatus::Failed) dropKv(seq);
  pendingEvents_.push_back(LoopEvent{seq, EventKind::Prefilled, (int32_t)s.held.size(), (int32_t)status, s.reused, {}});
}

void DecodeLoop::step() {
  batch_.n_tokens = 0;
  // Generating sequences first, in KV id order: their tokens are the batch's outputs 0..k-1.
  std::vector<int32_t> outputs;
  for (int32_t id = 0; id < config_.parallel; id++) {
    const int32_t i = owner_[(size_t)id];
    if (i < 0) continue;
    Seq& s = seqs_[(size_t)i];
    if (s.state != SeqState::Generating || s.credit <= 0) continue;
    if ((int32_t)s.held.size() >= config_.ctxPerSeq) {
      finish(i, DoneReason::Length);
      continue;
    }
    batchAdd(batch_, s.next, (llama_pos)s.held.size(), s.kv, true);
    outputs.push_back(i);
  }
  // Prompt chunks fill the rest of the batch, the starting sequence rotating so none starves.
  struct Slice {
    int32_t seq;
    size_t count;
    int32_t lastIndex;  // batch index of the prompt's last token, or -1 when not in this chunk
  };
  std::vector<Slice> slices;
  int32_t budget = config_.batch - batch_.n_tokens;
  for (int32_t k = 0; k < config_.parallel && budget > 0; k++) {
    const int32_t i = (roundRobin_ + k) % config_.parallel;
    Seq& s = seqs_[(size_t)i];
    if (s.state != SeqState::Prefilling) continue;
    const size_t room = (size_t)std::max<int32_t>(0, config_.ctxPerSeq - (int32_t)s.held.size());
    const size_t n = std::min({(size_t)budget, s.pending.size() - s.pendingPos, room});
    if (n == 0) {
      endPrefill(i, PrefillStatus::Failed);
      continue;
    }
    const bool last = s.pendingPos + n == s.pending.size();
    for (size_t j = 0; j < n; j++) {
      batchAdd(batch_, s.pending[s.pendingPos + j], (llama_pos)(s.held.size() + j), s.kv, last && j + 1 == n);
    }
    slices.push_back(Slice{i, n, last ? batch_.n_tokens - 1 : -1});
    budget -= (int32_t)n;
  }
  roundRobin_ = (roundRobin_ + 1) % config_.parallel;
  if (batch_.n_tokens == 0) return;

  int32_t rc;
  try {
    rc = llama_decode(ctx_, batch_);
  } catch (...) {
    rc = -1;
  }
  // A successful decode ran the memory update first: every staged stream copy is in place.
  if (rc == 0) kvCopyStaged_ = false;
  if (rc != 0) {
    for (const auto& sl : slices) endPrefill(sl.seq, PrefillStatus::Failed);
    for (int32_t i : outputs) finish(i, DoneReason::Error);
    return;
  }

  for (const auto& sl : slices) {
    Seq& s = seqs_[(size_t)sl.seq];
    s.held.insert(s.held.end(), s.pending.begin() + (long)s.pendingPos, s.pending.begin() + (long)(s.pendingPos + sl.count));
    s.pendingPos += sl.count;
    if (sl.lastIndex < 0) continue;
    const float* logits = llama_get_logits_ith(ctx_, sl.lastIndex);
    s.logits.assign(logits, logits + llama_vocab_n_tokens(vocab_));
    s.hasLogits = true;
    endPrefill(sl.seq, PrefillStatus::Ok);
  }
  for (size_t k = 0; k < outputs.size(); k++) {
    const int32_t i = outputs[k];
    seqs_[(size_t)i].held.push_back(seqs_[(size_t)i].next);
    llama_token token;
    try {
      token = seqs_[(size_t)i].sampler->sample(llama_get_logits_ith(ctx_, (int32_t)k));
    } catch (...) {
      finish(i, DoneReason::Error);
      continue;
    }
    if (token == LLAMA_TOKEN_NULL) {
      finish(i, DoneReason::DeadEnd);
      continue;
    }
    accept(i, token);
  }
}

void DecodeLoop::accept(int32_t i, llama_token token) {
  Seq& s = seqs_[(size_t)i];
  if (isEnd(token)) {
    finish(i, DoneReason::Stop);
    return;
  }
  const std::string piece = pieceOf(vocab_, token);
  pendingEvents_.push_back(LoopEvent{i, EventKind::Token, token, 0, 0, s.text.push(piece.data(), piece.size()), logprobsOf(*s.sampler, token)});
  s.next = token;
  s.credit--;
  if (--s.remaining <= 0) finish(i, DoneReason::Length);
}

void DecodeLoop::publish() {
  if (pendingEvents_.empty() && pendingStates_.empty()) return;
  bool wake = false;
  {
    std::lock_guard<std::mutex> lock(outMu_);
    for (auto& op : pendingStates_) stateOutbox_.push_back(std::move(op));
    pendingStates_.clear();
    if (outbox_.empty()) {
      outbox_.swap(pendingEvents_);
    } else {
      for (auto& e : pendingEvents_) outbox_.push_back(std::move(e));
      pendingEvents_.clear();
    }
    if (!notified_) {
      notified_ = true;
      wake = true;
    }
  }
  if (wake) notify_();
}
