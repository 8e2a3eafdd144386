#pragma once
// SAELens 1.5's run_evals for a language-model run (saelens-semantics.md §5 "Evals"): CE loss
// of the model clean, with the SAE spliced in at the hook, and with the hook zero-ablated, over
// n_eval_batches batches of eval_batch_size_prompts rows from the training token stream, plus
// the L2 norms of the SAE's input and output on one more batch (drawn first, as run_evals does).
#include <array>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include <torch/torch.h>

#include "data/TokenSource.h"
#include "model/HookedTransformer.h"
#include "sae/Sae.h"

namespace sae {

struct LanguageModelEvalResult {
  double ce_loss_score = 0;          // mean over batches of (zero - recons) / (zero - clean)
  double ce_loss_without_sae = 0;    // mean clean loss
  double ce_loss_with_sae = 0;       // mean loss with the SAE's reconstruction spliced in
  double ce_loss_with_ablation = 0;  // mean loss with the hook zeroed
  double l2_norm = 0;                // mean ||sae_out||
  double l2_norm_in = 0;             // mean ||x||
  double l2_ratio = 0;               // mean ||sae_out|| / ||x|| (||x|| < 1e-4 counts as 1)
  // "metrics/CE_loss_score", ... as SAELens logs them.
  std::map<std::string, double> metrics() const;
};

class LanguageModelEvaluator {
 public:
  LanguageModelEvaluator(std::shared_ptr<const HookedTransformer> model,
                         std::shared_ptr<TokenSource> tokens, std::string hookPoint,
                         std::optional<int64_t> headIndex, int64_t nBatches, int64_t batchPrompts);

  LanguageModelEvalResult run(const Sae& sae) const;
  // One batch [rows, context]: (clean, with SAE, zero-ablated) losses, as get_recons_loss.
  std::array<double, 3> batchLosses(const Sae& sae, const torch::Tensor& tokens) const;
  // SAELens's score: (zero - recons) / (zero - clean), the divisor 1 when |zero - clean| < 1e-4.
  static double ceLossScore(double clean, double recons, double zero);

 private:
  torch::Tensor nextBatch() const;
  torch::Tensor reconstruct(const Sae& sae, const torch::Tensor& activation) const;

  std::shared_ptr<const HookedTransformer> model_;
  std::shared_ptr<TokenSource> tokens_;
  std::string hookPoint_;
  std::optional<int64_t> headIndex_;
  int64_t nBatches_, batchPrompts_;
};

}  // namespace sae
