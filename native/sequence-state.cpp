// Per-sequence KV state for the worker's KV tiers (host memory, disk, another worker): llama.cpp's
// llama_state_seq_get_data / llama_state_seq_set_data on the llama.cpp sequence that holds one of
// ours. The bytes carry llama.cpp's own layout (cell count, positions, per-layer K and V with their
// types and row sizes); llama_state_seq_set_data checks that layout against this context and
// returns 0 on a mismatch. Which model and engine wrote them is the caller's check (the tier file
// header), since llama.cpp's sequence format names neither.
#include <algorithm>

#include "decode-loop.h"

void DecodeLoop::queueState(StateOp op) {
  Command c{CommandKind::State, op.seq, {}, nullptr, 0, 0, 0, nullptr};
  c.op = std::make_unique<StateOp>(std::move(op));
  push(std::move(c));
}

std::vector<DecodeLoop::StateOp> DecodeLoop::takeStateResults() {
  std::lock_guard<std::mutex> lock(outMu_);
  std::vector<StateOp> out;
  out.swap(stateOutbox_);
  return out;
}

void DecodeLoop::runState(StateOp& op) {
  op.rc = op.save ? 0 : -1;
  try {
    // A staged KV copy (shareKv) lands at the next decode: a read now could lack its bytes, and
    // bytes set now into its source would be copied. Land it first.
    if (kvCopyStaged_) landStagedCopy();
    if (kvCopyStaged_) return;
    if (op.save) {
      op.rc = saveNow(op.seq, op.bytes, op.tokens) ? 1 : 0;
    } else {
      op.rc = restoreNow(op.seq, op.bytes.data(), op.bytes.size(), op.tokens);
      op.bytes = std::vector<uint8_t>();  // the input is no longer needed: free it here
      op.tokens = std::vector<llama_token>();
    }
  } catch (...) {
    // e.g. an allocation: a save gives nothing; a restore may have emptied the sequence.
    if (op.save) {
      op.rc = 0;
      op.bytes.clear();
      op.tokens.clear();
    } else if (op.seq >= 0 && op.seq < config_.parallel && seqs_[(size_t)op.seq].state == SeqState::Idle) {
      dropKv(op.seq);
      op.rc = 0;
    }
  }
}

bool DecodeLoop::saveNow(int32_t seq, std::vector<uint8_t>& bytes, std::vector<llama_token>& tokens) {
  if (seq < 0 || seq >= config_.parallel) return false;
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

int32_t DecodeLoop::restoreNow(int32_t seq, const uint8_t* bytes, size_t size, const std::vector<llama_token>& tokens) {
  if (seq < 0 || seq >= config_.parallel || tokens.empty()) return 0;
  if ((int32_t)tokens.size() > config_.ctxPerSeq) return 0;
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
