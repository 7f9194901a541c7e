#include "engine-context.h"

#include "ggml-backend.h"

bool ensureCpuBackend(const std::string& dir, const std::vector<std::string>& preferred) {
  for (const auto& variant : preferred) {
    if (ggml_backend_dev_by_type(GGML_BACKEND_DEVICE_TYPE_CPU) != nullptr) break;
    // Refused (returns null) when this CPU lacks the variant's instructions. An absolute path is a
    // backend built outside `dir` (the one built for this CPU by scripts/build-cpu-backend.mjs).
    ggml_backend_load((variant.rfind('/', 0) == 0 ? variant : dir + "/" + variant).c_str());
  }
  if (ggml_backend_dev_by_type(GGML_BACKEND_DEVICE_TYPE_CPU) == nullptr) {
    ggml_backend_load_all_from_path(dir.c_str());
  }
  return ggml_backend_dev_by_type(GGML_BACKEND_DEVICE_TYPE_CPU) != nullptr;
}

std::unique_ptr<EngineContext> EngineContext::create(const EngineParams& p, std::string& error) {
  std::unique_ptr<EngineContext> e(new EngineContext());
  llama_model_params mp = llama_model_default_params();
  mp.n_gpu_layers = 0;
  e->model_ = llama_model_load_from_file(p.modelPath.c_str(), mp);
  if (e->model_ == nullptr) {
    error = "could not load model " + p.modelPath;
    return nullptr;
  }
  llama_context_params cp = llama_context_default_params();
  cp.n_ctx = (uint32_t)(p.ctxPerSeq * p.parallel);
  cp.n_batch = (uint32_t)p.batch;
  cp.n_ubatch = (uint32_t)p.batch;
  cp.n_seq_max = (uint32_t)p.parallel;
  cp.n_threads = p.threads;
  cp.n_threads_batch = p.threadsBatch;
  cp.flash_attn_type = p.flashAttn < 0 ? LLAMA_FLASH_ATTN_TYPE_AUTO : p.flashAttn == 0 ? LLAMA_FLASH_ATTN_TYPE_DISABLED : LLAMA_FLASH_ATTN_TYPE_ENABLED;
  cp.no_perf = true;
  cp.kv_unified = p.kvUnified;
  e->ctx_ = llama_init_from_model(e->model_, cp);
  if (e->ctx_ == nullptr) {
    error = "could not create a llama.cpp context";
    return nullptr;
  }

  ggml_backend_dev_t cpu = ggml_backend_dev_by_type(GGML_BACKEND_DEVICE_TYPE_CPU);
  if (cpu == nullptr) return e;
  ggml_backend_reg_t reg = ggml_backend_dev_backend_reg(cpu);
  auto newPool = (decltype(ggml_threadpool_new)*)ggml_backend_reg_get_proc_address(reg, "ggml_threadpool_new");
  e->freePool_ = (decltype(ggml_threadpool_free)*)ggml_backend_reg_get_proc_address(reg, "ggml_threadpool_free");
  if (newPool == nullptr || e->freePool_ == nullptr) return e;
  ggml_threadpool_params tp = ggml_threadpool_params_default(p.threads);
  tp.poll = (uint32_t)p.poll;
  if (p.threadsBatch != p.threads) {
    ggml_threadpool_params tpb = ggml_threadpool_params_default(p.threadsBatch);
    tpb.poll = (uint32_t)p.poll;
    e->poolBatch_ = newPool(&tpb);
  }
  e->pool_ = newPool(&tp);
  if (e->pool_ != nullptr) llama_attach_threadpool(e->ctx_, e->pool_, e->poolBatch_);
  return e;
}

EngineContext::~EngineContext() {
  if (ctx_ != nullptr) {
    llama_detach_threadpool(ctx_);
    llama_free(ctx_);
  }
  if (freePool_ != nullptr) {
    if (pool_ != nullptr) freePool_(pool_);
    if (poolBatch_ != nullptr) freePool_(poolBatch_);
  }
  if (model_ != nullptr) llama_model_free(model_);
}
