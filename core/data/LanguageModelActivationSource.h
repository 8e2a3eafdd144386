#pragma once
// Activations from a language model, as SAELens's ActivationsStore.get_activations makes them:
// batches of store_batch_size token rows from a TokenSource, run up to the hook's layer
// (stop_at_layer = layer + 1), all positions in row order, BOS included. Per-head hooks
// ([B, P, heads, d_head]) give one head (hook_point_head_index) or all heads flattened.
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "data/ActivationSource.h"
#include "data/TokenSource.h"
#include "model/HookedTransformer.h"

namespace sae {

class LanguageModelActivationSource : public ActivationSource {
 public:
  // Throws std::runtime_error when the hook is not one of the model's, the tokens' context size
  // exceeds n_ctx, or the hook's width differs from dIn (naming both).
  LanguageModelActivationSource(std::shared_ptr<const HookedTransformer> model,
                                std::shared_ptr<TokenSource> tokens, std::string hookPoint,
                                std::optional<int64_t> headIndex, int64_t storeBatchSize,
                                int64_t dIn);

  int64_t dIn() const override { return dIn_; }
  torch::Tensor next(int64_t rows) override;
  bool shufflesBuffers() const override { return true; }
  std::string describe() const override;
  StreamState saveState() const override;
  void restoreState(const StreamState& state) override;

  // The activations of given token rows [rows, context] -> [rows * context, d_in].
  torch::Tensor activationsFor(const torch::Tensor& tokens) const;
  // The hook's value turned into activation rows (head selection or flattening).
  torch::Tensor toRows(const torch::Tensor& hookValue) const;

  const std::shared_ptr<const HookedTransformer>& model() const { return model_; }
  const std::optional<int64_t>& headIndex() const { return headIndex_; }
  const std::shared_ptr<TokenSource>& tokens() const { return tokens_; }
  const std::string& hookPoint() const { return hookPoint_; }

 private:
  std::shared_ptr<const HookedTransformer> model_;
  std::shared_ptr<TokenSource> tokens_;
  std::string hookPoint_;
  std::optional<int64_t> headIndex_;
  int64_t storeBatchSize_;
  int64_t dIn_;
  torch::Tensor pending_;  // rows computed but not handed out yet
};

}  // namespace sae
