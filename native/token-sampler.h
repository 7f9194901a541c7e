// Chooses the next token of one sequence from its logits, doing only the work the request asked
// for: greedy requests without penalties or grammar take an argmax over the (biased) logits; every
// other request runs a llama.cpp sampler chain built once per generation.
//
// Dead ends: when the grammar and the logit bias together leave no token allowed, llama.cpp would
// pick one anyway and then throw ("Unexpected empty grammar stack") or abort (an end token
// accepted before the grammar is complete). `sample` checks that some token is still allowed
// before anything selects or accepts one, and answers LLAMA_TOKEN_NULL instead.
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "llama.h"

struct SamplingConfig {
  float temperature = 0.8f;  // <= 0: greedy
  int32_t topK = 40;         // <= 0: the whole vocabulary
  float topP = 0.95f;        // 1: off
  float minP = 0.0f;         // 0: off
  bool hasSeed = false;
  uint32_t seed = 0;
  int32_t penaltyLastN = 64;  // tokens
  float repeatPenalty = 1.0f;
  float presencePenalty = 0.0f;
  float frequencyPenalty = 0.0f;
  // Bias added to a token's logit; -INFINITY bans it.
  std::vector<llama_logit_bias> bias;
  // GBNF; empty: none.
  std::string grammar;
  // Log-probabilities of each chosen token and of the `topLogprobs` likeliest (0..20); -1: off.
  int32_t topLogprobs = -1;
};

// The log-probability of a chosen token and the likeliest alternatives, from the distribution
// after the logit bias, the grammar and the penalties, before truncation and temperature
// (natural log, softmax at temperature 1).
struct TokenLogprobs {
  float logprob = 0.0f;
  std::vector<std::pair<llama_token, float>> top;  // most likely first
};

class TokenSampler {
 public:
  // Returns nullptr and sets `error` when the grammar does not parse.
  static std::unique_ptr<TokenSampler> create(const llama_vocab* vocab, const SamplingConfig& config, std::string& error);
  ~TokenSampler();
  TokenSampler(const TokenSampler&) = delete;
  TokenSampler& operator=(const TokenSampler&) = delete;

  // Samples from `logits` (n_vocab floats, modified in place) and records the token (penalties,
  // grammar); LLAMA_TOKEN_NULL: a dead end, no token allowed (nothing recorded). Other failures throw.
  llama_token sample(float* logits);
  // Whether logprobs are asked for; then `lastLogprobs` describes the last token `sample` chose.
  bool wantsLogprobs() const { return topLogprobs_ >= 0; }
  const TokenLogprobs& lastLogprobs() const { return last_; }

 private:
  TokenSampler() = default;
  // The chain's pick over the whole vocabulary when the grammar allows it (accepted); else
  // LLAMA_TOKEN_NULL and nothing recorded.
  llama_token sampleUnconstrained(const float* logits);
  int32_t nVocab_ = 0;
  std::vector<llama_logit_bias> bias_;
  // Applied and accepted apart from the chain, so that a dead end is seen before selection.
  llama_sampler* grammar_ = nullptr;
  // Penalties, truncation, temperature, selection; nullptr (and no grammar): the greedy fast path.
  llama_sampler* chain_ = nullptr;
  std::vector<llama_token_data> candidates_;
  std::vector<bool> allowed_;  // per token id, for the last sample
  // With logprobs the penalties run apart from the chain, before the distribution is read.
  llama_sampler* penalties_ = nullptr;
  int32_t topLogprobs_ = -1;
  TokenLogprobs last_;
  void readLogprobs(const llama_token_data_array& cur, llama_token chosen);
};

// Whether the config is plain greedy (an argmax suffices; logprobs then come from the biased logits).
bool isGreedyFastPath(const SamplingConfig& config);
