// Per-sequence KV state for the worker's KV tiers (host memory, disk, another worker): llama.cpp's
// llama_state_seq_get_data / llama_state_seq_set_data on the llama.cpp sequence that holds one of
// ours. The bytes carry llama.cpp's own layout (cell count, positions, per-layer K and V with their
// types and row sizes); llama_state_seq_set_data checks that layout against this context and
// returns 0 on a mismatch. Which model and engine wrote them is the caller's check (the tier file
// header), since llama.cpp's sequence format names neither.
#include <algorithm>

#include "decode-loop.h"

bool DecodeLoop::tryContext(std::unique_lock<std::mutex>& lock) {
  lock = std::unique_lock<std::mutex>(stepMu_, std::try_to_lock);
  if (lock.owns_lock()) return true;
  ctxWanted_.store(true);  // the loop parks after its step; the caller tries again shortly
  return false;
}

void DecodeLoop::releaseContext(std::unique_lock<std::mutex>& lock) {
  if (lock.owns_lock()) lock.unlock();
  {
    std::lock_guard<std::mutex> park(parkMu_);
    ctxWanted_.store(false);
  }
  parkCv_.notify_all();
}

bool DecodeLoop::saveState(int32_t seq, std::vector<uint8_t>& bytes, std::vector<llama_token>& tokens) {
  if (seq < 0 || seq >= config_.parallel) return false;
  std::unique_lock<std::mutex> stepLock;
  if (!tryContext(stepLock)) return false;
  struct Release {
    DecodeLoop* self;
    std::unique_lock<std::mutex>& lock;
    ~Release() { self->releaseContext(lock); }
  } release{this, stepLock};
  // A staged KV copy (shareKv) lands at the next decode: a stream read now could lack its bytes.
  if (kvCopyStaged_) return false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& c : commands_) if (c.seq == seq) return false;
  }
  Seq& s = seqs_[(size_t)seq];
  if (s.state != SeqState::Idle || s.kv < 0 || s.held.empty()) return false;
  const size_t size = llama_state_seq_get_size(ctx_, s.kv);
  if (size == 0) return false;
  bytes.resize(size);
  const size_t n = llama_state_seq_get_data(ctx_, bytes.data(), bytes.size(), s.kv);
  if (n == 0) return false;
  bytes.resize(n);
  tokens = s.held;
  return true;
}

int32_t DecodeLoop::restoreState(int32_t seq, const uint8_t* bytes, size_t size, const std::vector<llama_token>& tokens) {
  if (seq < 0 || seq >= config_.parallel || tokens.empty()) return 0;
  if ((int32_t)tokens.size() > config_.ctxPerSeq) return 0;
  std::unique_lock<std::mutex> stepLock;
  if (!tryContext(stepLock)) return -1;
  struct Release {
    DecodeLoop* self;
    std::unique_lock<std::mutex>& lock;
    ~Release() { self->releaseContext(lock); }
  } release{this, stepLock};
  // A staged KV copy (shareKv) lands at the next decode and would overwrite bytes set now.
  if (kvCopyStaged_) return -1;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& c : commands_) if (c.seq == seq) return -1;
  }
  Seq& s = seqs_[(size_t)seq];
  if (s.state != SeqState::Idle) return -1;
  dropKv(seq);
  s.hasLogits = false;
  const llama_seq_id kv = placeKv(seq);
  if (kv < 0) return 0;
  size_t read = 0;
  try {
    read = llama_state_seq_set_data(ctx_, bytes, size, kv);
  } catch (...) {
    read = 0;
  }
  // The state must hold exactly `tokens` cells at positions 0..n-1, else the prefix reuse of the
  // next prefill would trust KV that is not there.
  if (read == 0 || llama_memory_seq_pos_max(llama_get_memory(ctx_), kv) != (llama_pos)tokens.size() - 1 ||
      llama_memory_seq_pos_min(llama_get_memory(ctx_), kv) != 0) {
    dropKv(seq);
    return 0;
  }
  s.held = tokens;
  return 1;
}
