// The llama.cpp objects one engine owns: the model, one context holding `parallel` sequences of
// `ctxPerSeq` tokens each, and persistent CPU thread pools (without them ggml starts and joins its
// worker threads on every decode call, which tiny models feel on every token).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "ggml-cpu.h"
#include "llama.h"

struct EngineParams {
  std::string modelPath;
  int32_t parallel = 1;
  int32_t ctxPerSeq = 1024;  // tokens
  int32_t batch = 512;       // tokens
  int32_t threads = 1;       // generation
  int32_t threadsBatch = 1;  // prompt processing
  // 0: threads sleep between graph computations; up to 100: they spin a while first.
  int32_t poll = 0;
  // One KV buffer for all sequences instead of one per sequence (llama-server's default with an
  // explicit slot count is per sequence). Unified, any batch is one computation but every token's
  // attention scans the cells of all sequences: measured on stories260K with 8 streams, 20% slower.
  bool kvUnified = false;
  // -1 auto, 0 off, 1 on.
  int32_t flashAttn = -1;
};

class EngineContext {
 public:
  // Returns nullptr and sets `error` on failure.
  static std::unique_ptr<EngineContext> create(const EngineParams& params, std::string& error);
  ~EngineContext();
  EngineContext(const EngineContext&) = delete;
  EngineContext& operator=(const EngineContext&) = delete;

  llama_model* model() const { return model_; }
  llama_context* context() const { return ctx_; }
  const llama_vocab* vocab() const { return llama_model_get_vocab(model_); }

 private:
  EngineContext() = default;
  llama_model* model_ = nullptr;
  llama_context* ctx_ = nullptr;
  ggml_threadpool* pool_ = nullptr;
  ggml_threadpool* poolBatch_ = nullptr;
  void (*freePool_)(ggml_threadpool*) = nullptr;
};

// Loads the CPU backend from `dir` unless one is registered already (node-llama-cpp, loaded in the
// same process, registers the same library): the first library file of `preferred` this CPU can
// run, else the variant ggml ranks best. Returns false when no CPU backend can be found.
bool ensureCpuBackend(const std::string& dir, const std::vector<std::string>& preferred);
