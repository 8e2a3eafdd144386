#pragma once
// Trains the demo world's small gelu-1l-family model on the demo token stream with the project's
// own HookedTransformer port (its differentiable forward and TransformerLens's loss), so the
// model that SAEs are trained on is produced on first use, with no download.
//
// Rows are packed as SAELens feeds a model: n_ctx tokens starting at a random offset of the
// stream, with <|endoftext|> (the BOS) prepended unless the row already starts with it.
#include <cstdint>
#include <functional>
#include <vector>

#include "demo/DemoModelOptions.h"
#include "model/HookedTransformer.h"

namespace sae {

class DemoModelTrainer {
 public:
  // Bumped whenever training changes, so cached demo models are retrained.
  static constexpr int kVersion = 1;

  // The architecture for a vocabulary of `vocabSize` tokens.
  static TransformerConfig configFor(const DemoModelOptions& options, int64_t vocabSize);

  // Trains from scratch. `progress(step, loss)` is called every 20 steps and at the end.
  // Throws std::runtime_error when the stream is too short for the options.
  static HookedTransformer train(const std::vector<int32_t>& tokens, int64_t vocabSize,
                                 int32_t bosId, const DemoModelOptions& options,
                                 DemoModelReport* report = nullptr,
                                 const std::function<void(int64_t, double)>& progress = {});

  // Mean next-token loss of `model` on the held-out tail of `tokens` (the rows train() uses).
  static double heldOutLoss(const HookedTransformer& model, const std::vector<int32_t>& tokens,
                            int32_t bosId, const DemoModelOptions& options);
};

}  // namespace sae
