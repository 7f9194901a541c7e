#include "token-sampler.h"

#include <algorithm>
#include <cmath>
#include <ctime>

bool isGreedyFastPath(const SamplingConfig& c) {
  const bool penalties = c.repeatPenalty != 1.0f || c.presencePenalty != 0.0f || c.frequencyPenalty != 0.0f;
  return c.temperature <= 0.0f && !penalties && c.grammar.empty();
}

std::unique_ptr<TokenSampler> TokenSampler::create(const llama_vocab* vocab, const SamplingConfig& c, std::string& error) {
  std::unique_ptr<TokenSampler> s(new TokenSampler());
  s->nVocab_ = llama_vocab_n_tokens(vocab);
  s->topLogprobs_ = c.topLogprobs < 0 ? -1 : std::min(c.topLogprobs, 20);
  for (const auto& b : c.bias) {
    if (b.token >= 0 && b.token < s->nVocab_) s->bias_.push_back(b);
  }
  if (isGreedyFastPath(c)) return s;

  // The grammar goes first (with the bias, added by hand): later samplers then only ever see
  // tokens the grammar allows.
  if (!c.grammar.empty()) {
    s->grammar_ = llama_sampler_init_grammar(vocab, c.grammar.c_str(), "root");
    if (s->grammar_ == nullptr) {
      error = "grammar does not parse";
      return nullptr;
    }
  }
  llama_sampler_chain_params params = llama_sampler_chain_default_params();
  params.no_perf = true;
  llama_sampler* chain = llama_sampler_chain_init(params);
  s->chain_ = chain;
  if (c.repeatPenalty != 1.0f || c.presencePenalty != 0.0f || c.frequencyPenalty != 0.0f) {
    llama_sampler* penalties = llama_sampler_init_penalties(s->nVocab_, c.penaltyLastN, c.repeatPenalty, c.frequencyPenalty, c.presencePenalty);
    if (s->topLogprobs_ >= 0) s->penalties_ = penalties;
    else llama_sampler_chain_add(chain, penalties);
  }
  if (c.temperature <= 0.0f) {
    llama_sampler_chain_add(chain, llama_sampler_init_greedy());
    return s;
  }
  const int32_t topK = c.topK <= 0 ? s->nVocab_ : std::min(c.topK, s->nVocab_);
  llama_sampler_chain_add(chain, llama_sampler_init_top_k(topK));
  if (c.topP < 1.0f) llama_sampler_chain_add(chain, llama_sampler_init_top_p(c.topP, 1));
  if (c.minP > 0.0f) llama_sampler_chain_add(chain, llama_sampler_init_min_p(c.minP, 1));
  llama_sampler_chain_add(chain, llama_sampler_init_temp(c.temperature));
  const uint32_t seed = c.hasSeed ? c.seed : (uint32_t)std::time(nullptr) ^ (uint32_t)(uintptr_t)s.get();
  llama_sampler_chain_add(chain, llama_sampler_init_dist(seed));
  return s;
}

TokenSampler::~TokenSampler() {
  if (grammar_ != nullptr) llama_sampler_free(grammar_);
  if (chain_ != nullptr) llama_sampler_free(chain_);
  if (penalties_ != nullptr) llama_sampler_free(penalties_);
}

void TokenSampler::readLogprobs(const llama_token_data_array& cur, llama_token chosen) {
  // log softmax over what is left allowed: logprob = logit - max - log(sum(exp(logit - max))).
  float maxLogit = -INFINITY;
  for (size_t i = 0; i < cur.size; i++) maxLogit = std::max(maxLogit, cur.data[i].logit);
  double sum = 0.0;
  for (size_t i = 0; i < cur.size; i++) {
    if (cur.data[i].logit > -INFINITY) sum += std::exp((double)(cur.data[i].logit - maxLogit));
  }
  const float logZ = maxLogit + (float)std::log(sum);
  last_.logprob = -INFINITY;
  last_.top.clear();
  for (size_t i = 0; i < cur.size; i++) {
    if (cur.data[i].id == chosen) last_.logprob = cur.data[i].logit - logZ;
  }
  if (topLogprobs_ <= 0) return;
  // The k largest by a partial sort of indices; ties keep the lower token id first.
  std::vector<size_t> idx;
  idx.reserve(cur.size);
  for (size_t i = 0; i < cur.size; i++) {
    if (cur.data[i].logit > -INFINITY) idx.push_back(i);
  }
  const size_t k = std::min(idx.size(), (size_t)topLogprobs_);
  std::partial_sort(idx.begin(), idx.begin() + (long)k, idx.end(), [&](size_t a, size_t b) {
    if (cur.data[a].logit != cur.data[b].logit) return cur.data[a].logit > cur.data[b].logit;
    return cur.data[a].id < cur.data[b].id;
  });
  for (size_t j = 0; j < k; j++) last_.top.emplace_back(cur.data[idx[j]].id, cur.data[idx[j]].logit - logZ);
}

llama_token TokenSampler::sample(float* logits) {
  // The logits are ours until the next decode; biasing them in place saves a copy.
  for (const auto& b : bias_) logits[b.token] += b.bias;
  if (chain_ != nullptr) {
    // Logprobs report the whole distribution the grammar allows (and the penalties then run
    // apart from the chain), so they need the grammar applied to every token: no fast path.
    if (grammar_ != nullptr && topLogprobs_ < 0) {
      const llama_token fast = sampleUnconstrained(logits);
      if (fast != LLAMA_TOKEN_NULL) return fast;
    }
    candidates_.resize((size_t)nVocab_);
    for (int32_t i = 0; i < nVocab_; i++) candidates_[(size_t)i] = llama_token_data{i, logits[i], 0.0f};
    llama_token_data_array cur{candidates_.data(), candidates_.size(), -1, false};
    if (grammar_ != nullptr) llama_sampler_apply(grammar_, &cur);
    // What the grammar and the bias allow, by id (the chain reorders the candidates).
    allowed_.resize((size_t)nVocab_);
    bool any = false;
    for (size_t i = 0; i < cur.size; i++) {
      const bool ok = cur.data[i].logit > -INFINITY;
      allowed_[(size_t)cur.data[i].id] = ok;
      any = any || ok;
    }
    if (!any) return LLAMA_TOKEN_NULL;
    if (penalties_ != nullptr) llama_sampler_apply(penalties_, &cur);
    // The distribution logprobs report: after bias, grammar and penalties, before truncation.
    // Truncation samplers reorder and cut `cur`, so the logits are kept aside first.
    std::vector<llama_token_data> before;
    if (topLogprobs_ >= 0) before.assign(cur.data, cur.data + cur.size);
    llama_sampler_apply(chain_, &cur);
    // Every chain ends in a sampler that selects (greedy or dist). Probabilities gone NaN (extreme
    // parameters) can make it pick a token the grammar forbids: that is never accepted.
    if (cur.selected < 0 || (size_t)cur.selected >= cur.size) return LLAMA_TOKEN_NULL;
    const llama_token token = cur.data[cur.selected].id;
    if (token < 0 || token >= nVocab_ || !allowed_[(size_t)token]) return LLAMA_TOKEN_NULL;
    if (grammar_ != nullptr) {
      // The token was allowed by the grammar's own apply; a throw here is still the grammar's
      // dead end (llama.cpp's "Unexpected empty grammar stack"), never a reason to die.
      try {
        llama_sampler_accept(grammar_, token);
      } catch (const std::exception&) {
        return LLAMA_TOKEN_NULL;
      }
    }
    llama_sampler_accept(chain_, token);
    if (penalties_ != nullptr) llama_sampler_accept(penalties_, token);
    if (topLogprobs_ >= 0) readLogprobs(llama_token_data_array{before.data(), before.size(), -1, false}, token);
    return token;
  }
  // Argmax, first index on ties (as llama.cpp's greedy sampler).
  int32_t best = 0;
  float bestLogit = logits[0];
  for (int32_t i = 1; i < nVocab_; i++) {
    if (logits[i] > bestLogit) {
      bestLogit = logits[i];
      best = i;
    }
  }
  // Every token banned by the bias: nothing may be chosen.
  if (!std::isfinite(bestLogit)) return LLAMA_TOKEN_NULL;
  if (topLogprobs_ >= 0) {
    candidates_.resize((size_t)nVocab_);
    for (int32_t i = 0; i < nVocab_; i++) candidates_[(size_t)i] = llama_token_data{i, logits[i], 0.0f};
    readLogprobs(llama_token_data_array{candidates_.data(), candidates_.size(), -1, false}, best);
  }
  return best;
}

// Rejection first (as llama.cpp's common sampler does): the chain selects from the whole
// vocabulary, then the grammar checks that one token, which costs one grammar step instead of one
// per vocabulary entry (32k on a Llama 2 vocabulary). A token the grammar allows is taken; else
// the caller samples again from what the grammar allows. Without truncation (top_k 0, top_p 1)
// the result has exactly the grammar-constrained distribution: an allowed token t comes out with
// p(t) + (1 - A) p(t) / A = p(t) / A, A the allowed mass. With truncation it is the truncated
// distribution where the pick is allowed. Text under tool_choice "auto" (whose grammar allows
// almost every token) thus costs about what it costs without a grammar.
llama_token TokenSampler::sampleUnconstrained(const float* logits) {
  candidates_.resize((size_t)nVocab_);
  for (int32_t i = 0; i < nVocab_; i++) candidates_[(size_t)i] = llama_token_data{i, logits[i], 0.0f};
  llama_token_data_array cur{candidates_.data(), candidates_.size(), -1, false};
  llama_sampler_apply(chain_, &cur);
  if (cur.selected < 0 || (size_t)cur.selected >= cur.size) return LLAMA_TOKEN_NULL;
  const llama_token token = cur.data[cur.selected].id;
  if (token < 0 || token >= nVocab_ || !std::isfinite(logits[token])) return LLAMA_TOKEN_NULL;
  llama_token_data one{token, logits[token], 0.0f};
  llama_token_data_array single{&one, 1, -1, false};
  try {
    llama_sampler_apply(grammar_, &single);
    if (!(single.data[0].logit > -INFINITY)) return LLAMA_TOKEN_NULL;
    llama_sampler_accept(grammar_, token);
  } catch (const std::exception&) {
    return LLAMA_TOKEN_NULL;
  }
  llama_sampler_accept(chain_, token);
  return token;
}
