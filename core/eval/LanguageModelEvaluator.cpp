#include "eval/LanguageModelEvaluator.h"

#include <cmath>

namespace sae {

std::map<std::string, double> LanguageModelEvalResult::metrics() const {
  return {{"metrics/CE_loss_score", ce_loss_score},
          {"metrics/ce_loss_without_sae", ce_loss_without_sae},
          {"metrics/ce_loss_with_sae", ce_loss_with_sae},
          {"metrics/ce_loss_with_ablation", ce_loss_with_ablation},
          {"metrics/l2_norm", l2_norm},
          {"metrics/l2_ratio", l2_ratio},
          {"metrics/l2_norm_in", l2_norm_in}};
}

LanguageModelEvaluator::LanguageModelEvaluator(std::shared_ptr<const HookedTransformer> model,
                                               std::shared_ptr<TokenSource> tokens,
                                               std::string hookPoint,
                                               std::optional<int64_t> headIndex, int64_t nBatches,
                                               int64_t batchPrompts)
    : model_(std::move(model)),
      tokens_(std::move(tokens)),
      hookPoint_(std::move(hookPoint)),
      headIndex_(headIndex),
      nBatches_(nBatches),
      batchPrompts_(batchPrompts) {
  model_->stopAtLayerFor(hookPoint_);  // throws for an unknown hook
}

double LanguageModelEvaluator::ceLossScore(double clean, double recons, double zero) {
  double divisor = zero - clean;
  if (std::fabs(divisor) < 1e-4) divisor = 1.0;
  return (zero - recons) / divisor;
}

torch::Tensor LanguageModelEvaluator::nextBatch() const {
  const auto ids = tokens_->nextRows(batchPrompts_);
  return torch::tensor(ids, torch::kInt64).reshape({batchPrompts_, tokens_->contextSize()});
}

// sae.forward on the hook's value, as SAELens's replacement hooks: the last dimension for
// [B, P, d] hooks, heads flattened (all heads) or one head replaced (head index) for q/k/v/z.
torch::Tensor LanguageModelEvaluator::reconstruct(const Sae& sae, const torch::Tensor& act) const {
  auto apply = [&](const torch::Tensor& x) {
    const auto rows = x.reshape({-1, x.size(-1)});
    return sae.forward(rows, 0.0, {}, /*training=*/false)
        .sae_out.reshape(x.sizes())
        .to(act.scalar_type());
  };
  if (act.dim() == 4) {
    if (headIndex_) {
      auto out = act.clone();
      out.select(2, *headIndex_).copy_(apply(act.select(2, *headIndex_)));
      return out;
    }
    return apply(act.flatten(-2, -1)).view(act.sizes());
  }
  return apply(act);
}

std::array<double, 3> LanguageModelEvaluator::batchLosses(const Sae& sae,
                                                          const torch::Tensor& tokens) const {
  torch::NoGradGuard noGrad;
  const double clean = model_->loss(tokens).item<double>();
  const double recons =
      model_
          ->loss(tokens, {{hookPoint_, [&](const torch::Tensor& x,
                                           const std::string&) { return reconstruct(sae, x); }}})
          .item<double>();
  const double zero =
      model_
          ->loss(tokens, {{hookPoint_, [](const torch::Tensor& x,
                                          const std::string&) { return torch::zeros_like(x); }}})
          .item<double>();
  return {clean, recons, zero};
}

LanguageModelEvalResult LanguageModelEvaluator::run(const Sae& sae) const {
  torch::NoGradGuard noGrad;
  LanguageModelEvalResult r;
  // run_evals draws its L2 batch before recons_loss_batched draws the CE batches.
  const auto l2Tokens = nextBatch();
  for (int64_t b = 0; b < nBatches_; ++b) {
    const auto [clean, recons, zero] = batchLosses(sae, nextBatch());
    r.ce_loss_score += ceLossScore(clean, recons, zero);
    r.ce_loss_without_sae += clean;
    r.ce_loss_with_sae += recons;
    r.ce_loss_with_ablation += zero;
  }
  if (nBatches_ > 0) {
    r.ce_loss_score /= nBatches_;
    r.ce_loss_without_sae /= nBatches_;
    r.ce_loss_with_sae /= nBatches_;
    r.ce_loss_with_ablation /= nBatches_;
  }
  auto act = model_->runWithCache(l2Tokens, {hookPoint_}).at(hookPoint_);
  if (act.dim() == 4) act = headIndex_ ? act.select(2, *headIndex_) : act.flatten(-2, -1);
  const auto out = reconstruct(sae, act);
  const auto normIn = act.norm(2, -1);
  const auto normOut = out.norm(2, -1);
  const auto divisor = torch::where(normIn.abs() < 1e-4, torch::ones_like(normIn), normIn);
  r.l2_norm = normOut.mean().item<double>();
  r.l2_norm_in = normIn.mean().item<double>();
  r.l2_ratio = (normOut / divisor).mean().item<double>();
  return r;
}

}  // namespace sae
