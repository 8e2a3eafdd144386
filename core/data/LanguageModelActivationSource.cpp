#include "data/LanguageModelActivationSource.h"

#include <stdexcept>

namespace sae {

LanguageModelActivationSource::LanguageModelActivationSource(
    std::shared_ptr<const HookedTransformer> model, std::shared_ptr<TokenSource> tokens,
    std::string hookPoint, std::optional<int64_t> headIndex, int64_t storeBatchSize, int64_t dIn)
    : model_(std::move(model)),
      tokens_(std::move(tokens)),
      hookPoint_(std::move(hookPoint)),
      headIndex_(headIndex),
      storeBatchSize_(storeBatchSize),
      dIn_(dIn) {
  model_->stopAtLayerFor(hookPoint_);  // throws, listing the hooks, when unknown
  const auto& c = model_->config();
  if (tokens_->contextSize() > c.n_ctx) {
    throw std::runtime_error("context_size " + std::to_string(tokens_->contextSize()) +
                             " is larger than the model's n_ctx " + std::to_string(c.n_ctx));
  }
  if (storeBatchSize_ < 1) throw std::runtime_error("store_batch_size must be at least 1");
  // The hook's width, from one short row, so a d_in mismatch is reported before training.
  const auto probe = toRows(
      model_->runWithCache(torch::zeros({1, 2}, torch::kInt64), {hookPoint_}).at(hookPoint_));
  if (probe.size(1) != dIn_) {
    throw std::runtime_error(
        "hook '" + hookPoint_ + "' gives activations of width " + std::to_string(probe.size(1)) +
        " but d_in is " + std::to_string(dIn_) + ": set d_in to " + std::to_string(probe.size(1)));
  }
}

torch::Tensor LanguageModelActivationSource::toRows(const torch::Tensor& value) const {
  if (value.dim() == 3) {
    if (headIndex_) {
      throw std::runtime_error("hook_point_head_index is set but '" + hookPoint_ +
                               "' has no head dimension");
    }
    return value.reshape({-1, value.size(2)});
  }
  // q, k, v, z are [B, P, heads, d_head]; scores and patterns ([B, heads, P, P]) are not
  // one vector per token.
  if (value.dim() == 4 && hookPoint_.find("pattern") == std::string::npos &&
      hookPoint_.find("scores") == std::string::npos) {
    if (headIndex_) {
      if (*headIndex_ < 0 || *headIndex_ >= value.size(2)) {
        throw std::runtime_error("hook_point_head_index " + std::to_string(*headIndex_) +
                                 " is outside 0.." + std::to_string(value.size(2) - 1));
      }
      return value.select(2, *headIndex_).reshape({-1, value.size(3)});
    }
    return value.reshape({value.size(0) * value.size(1), -1});
  }
  throw std::runtime_error("hook '" + hookPoint_ +
                           "' does not give one activation vector per token (attention "
                           "scores and patterns cannot train an SAE)");
}

torch::Tensor LanguageModelActivationSource::activationsFor(const torch::Tensor& tokens) const {
  torch::NoGradGuard noGrad;
  return toRows(model_->runWithCache(tokens, {hookPoint_}).at(hookPoint_)).contiguous();
}

torch::Tensor LanguageModelActivationSource::next(int64_t rows) {
  std::vector<torch::Tensor> parts;
  int64_t have = 0;
  if (pending_.defined()) {
    parts.push_back(pending_);
    have = pending_.size(0);
  }
  const int64_t context = tokens_->contextSize();
  while (have < rows) {
    auto ids = tokens_->nextRows(storeBatchSize_);
    const auto batch = torch::tensor(ids, torch::kInt64).reshape({storeBatchSize_, context});
    auto acts = activationsFor(batch);
    have += acts.size(0);
    parts.push_back(std::move(acts));
  }
  auto all = parts.size() == 1 ? parts[0] : torch::cat(parts);
  pending_ = all.size(0) > rows ? all.slice(0, rows).clone() : torch::Tensor();
  return all.slice(0, 0, rows).contiguous();
}

std::string LanguageModelActivationSource::describe() const {
  const auto& c = model_->config();
  return "language model (" + std::to_string(c.n_layers) + " layers, d_model " +
         std::to_string(c.d_model) + ") at " + hookPoint_ +
         (headIndex_ ? " head " + std::to_string(*headIndex_) : "") + " on " + tokens_->describe();
}

}  // namespace sae

namespace sae {

StreamState LanguageModelActivationSource::saveState() const {
  const auto history = tokens_->callHistory();
  torch::Tensor calls = torch::empty({static_cast<int64_t>(history.size()), 2}, torch::kInt64);
  auto a = calls.accessor<int64_t, 2>();
  for (size_t i = 0; i < history.size(); ++i) {
    a[int64_t(i)][0] = history[i].first;
    a[int64_t(i)][1] = history[i].second;
  }
  StreamState state;
  state["token_calls"] = calls;
  state["pending"] = pending_.defined() ? pending_ : torch::empty({0, dIn_}, torch::kFloat32);
  return state;
}

void LanguageModelActivationSource::restoreState(const StreamState& state) {
  const auto calls = state.find("token_calls");
  const auto pending = state.find("pending");
  if (calls == state.end() || pending == state.end())
    throw std::runtime_error(
        "resume state of a language-model source needs token_calls and pending");
  const torch::Tensor c = calls->second.to(torch::kInt64).contiguous();
  if (c.dim() != 2 || c.size(1) != 2)
    throw std::runtime_error("resume state: token_calls must be [n, 2]");
  std::vector<std::pair<int64_t, int64_t>> history;
  auto a = c.accessor<int64_t, 2>();
  for (int64_t i = 0; i < c.size(0); ++i)
    history.emplace_back(a[i][0], a[i][1]);
  tokens_->replayCalls(history);
  const torch::Tensor& p = pending->second;
  if (p.dim() != 2 || p.size(1) != dIn_)
    throw std::runtime_error("resume state: pending activations must be [n, " +
                             std::to_string(dIn_) + "]");
  pending_ = p.size(0) > 0 ? p.to(torch::kFloat32).clone() : torch::Tensor();
}

}  // namespace sae
