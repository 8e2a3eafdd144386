#include "demo/DemoModelTrainer.h"

#include <ATen/Parallel.h>

#include <chrono>
#include <cmath>
#include <stdexcept>
#include <string>

#include "demo/DemoRandom.h"

namespace sae {

namespace {

// Restores torch's intra-op thread count when training ends (or throws).
class ThreadScope {
 public:
  explicit ThreadScope(int threads) : previous_(at::get_num_threads()) {
    if (threads > 0) at::set_num_threads(threads);
  }
  ~ThreadScope() { at::set_num_threads(previous_); }
  ThreadScope(const ThreadScope&) = delete;
  ThreadScope& operator=(const ThreadScope&) = delete;

 private:
  int previous_;
};

int64_t heldOutStart(size_t streamSize, const DemoModelOptions& o) {
  return static_cast<int64_t>(static_cast<double>(streamSize) * (1.0 - o.heldOutFraction));
}

// One row of n_ctx tokens from `offset`: BOS first (prepended unless already there).
void fillRow(const std::vector<int32_t>& tokens, int64_t offset, int32_t bos, int64_t nCtx,
             int64_t* row) {
  int64_t k = 0;
  if (tokens[static_cast<size_t>(offset)] != bos) row[k++] = bos;
  for (int64_t i = offset; k < nCtx; ++i)
    row[k++] = tokens[static_cast<size_t>(i)];
}

double lrAt(int64_t step, const DemoModelOptions& o) {
  if (step < o.warmupSteps) return o.lr * static_cast<double>(step + 1) / o.warmupSteps;
  const double t = static_cast<double>(step - o.warmupSteps) /
                   static_cast<double>(std::max<int64_t>(1, o.steps - o.warmupSteps));
  const double cosine = 0.5 * (1.0 + std::cos(3.14159265358979323846 * std::min(1.0, t)));
  return o.lr * (o.minLrFraction + (1.0 - o.minLrFraction) * cosine);
}

}  // namespace

TransformerConfig DemoModelTrainer::configFor(const DemoModelOptions& options, int64_t vocabSize) {
  TransformerConfig c;
  c.n_layers = 1;
  c.d_model = options.dModel;
  c.n_heads = options.nHeads;
  c.d_head = options.dModel / options.nHeads;
  c.d_mlp = options.dMlp;
  c.d_vocab = vocabSize;
  c.d_vocab_out = vocabSize;
  c.n_ctx = options.nCtx;
  c.act_fn = "gelu";
  c.normalization_type = "LN";
  c.attn_scale = std::sqrt(static_cast<double>(c.d_head));
  c.model_name = "sae-workbench-demo-1l";
  c.tokenizer_name = "tokenizer.json";
  c.validate("demo model options");
  return c;
}

double DemoModelTrainer::heldOutLoss(const HookedTransformer& model,
                                     const std::vector<int32_t>& tokens, int32_t bosId,
                                     const DemoModelOptions& o) {
  const int64_t start = heldOutStart(tokens.size(), o);
  const int64_t stride = o.nCtx - 1;
  const int64_t rows =
      std::min<int64_t>(o.evalRows, (static_cast<int64_t>(tokens.size()) - start - 1) / stride);
  if (rows < 1) {
    throw std::runtime_error("demo model: the held-out part of the token stream (" +
                             std::to_string(tokens.size() - static_cast<size_t>(start)) +
                             " tokens) is shorter than one row of n_ctx=" + std::to_string(o.nCtx) +
                             "; use a larger corpus");
  }
  torch::Tensor batch = torch::empty({rows, o.nCtx}, torch::kInt64);
  for (int64_t r = 0; r < rows; ++r)
    fillRow(tokens, start + r * stride, bosId, o.nCtx, batch[r].data_ptr<int64_t>());
  torch::NoGradGuard noGrad;
  return model.loss(batch).item<double>();
}

HookedTransformer DemoModelTrainer::train(const std::vector<int32_t>& tokens, int64_t vocabSize,
                                          int32_t bosId, const DemoModelOptions& o,
                                          DemoModelReport* report,
                                          const std::function<void(int64_t, double)>& progress) {
  const auto started = std::chrono::steady_clock::now();
  ThreadScope threads(o.threads);
  const int64_t trainEnd = heldOutStart(tokens.size(), o);
  if (trainEnd < 4 * o.nCtx) {
    throw std::runtime_error("demo model: the token stream (" + std::to_string(tokens.size()) +
                             " tokens) is too short to train rows of n_ctx=" +
                             std::to_string(o.nCtx) + "; use a larger corpus");
  }
  HookedTransformer model(configFor(o, vocabSize), o.seed);
  DemoModelReport r;
  r.trainTokens = trainEnd;
  r.initialHeldOutLoss = heldOutLoss(model, tokens, bosId, o);

  model.setRequiresGrad(true);
  const std::vector<torch::Tensor> params = model.parameters();
  torch::optim::Adam adam(params, torch::optim::AdamOptions(o.lr).betas({0.9, 0.99}));
  DemoRandom rng(o.seed ^ 0x5DEECE66DULL);
  torch::Tensor batch = torch::empty({o.batchSize, o.nCtx}, torch::kInt64);
  double tail = 0;
  int64_t tailCount = 0;
  for (int64_t step = 0; step < o.steps; ++step) {
    for (int64_t b = 0; b < o.batchSize; ++b) {
      const auto offset = static_cast<int64_t>(rng.below(static_cast<uint64_t>(trainEnd - o.nCtx)));
      fillRow(tokens, offset, bosId, o.nCtx, batch[b].data_ptr<int64_t>());
    }
    for (auto& group : adam.param_groups())
      static_cast<torch::optim::AdamOptions&>(group.options()).lr(lrAt(step, o));
    adam.zero_grad();
    const torch::Tensor loss = model.loss(batch);
    loss.backward();
    torch::nn::utils::clip_grad_norm_(params, 1.0);
    adam.step();
    const double value = loss.item<double>();
    if (!std::isfinite(value)) {
      throw std::runtime_error("demo model: the training loss became " + std::to_string(value) +
                               " at step " + std::to_string(step) + "; lower the learning rate");
    }
    if (step >= o.steps - 20) {
      tail += value;
      ++tailCount;
    }
    if (progress && (step % 20 == 0 || step == o.steps - 1)) progress(step, value);
  }
  model.setRequiresGrad(false);
  r.steps = o.steps;
  r.finalTrainLoss = tailCount > 0 ? tail / static_cast<double>(tailCount) : r.initialHeldOutLoss;
  r.heldOutLoss = heldOutLoss(model, tokens, bosId, o);
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  if (report) *report = r;
  return model;
}

}  // namespace sae
