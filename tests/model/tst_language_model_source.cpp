// LanguageModelActivationSource and LanguageModelEvaluator on the reference model fixtures
// (tests/reference/model_reference.py): activation rows are the hook's values in row order,
// split across store batches correctly, per-head hooks select or flatten heads, a d_in mismatch
// is refused; the CE evals (clean, SAE spliced, zero-ablated, score) and the L2 metrics match
// the reference.
#include <QtTest>

#include <torch/torch.h>

#include "data/LanguageModelActivationSource.h"
#include "eval/LanguageModelEvaluator.h"
#include "formats/Safetensors.h"
#include "model/ModelLoader.h"
#include "support/TestText.h"

using sae::LanguageModelActivationSource;
using sae::LanguageModelEvaluator;
using sae::ModelLoader;
using saetest::contains;
using saetest::errorOf;

namespace {

const std::string kModels = SAEWB_FIXTURES_DIR "/model/";

std::map<std::string, torch::Tensor> goldens(const std::string& name) {
  std::map<std::string, torch::Tensor> out;
  for (auto& [key, t] : sae::Safetensors::read(kModels + name + ".golden.safetensors"))
    out[key] = t;
  return out;
}

// Hands out the same token rows again and again.
class RepeatingTokens : public sae::TokenSource {
 public:
  explicit RepeatingTokens(const torch::Tensor& rows) : rows_(rows.contiguous()) {}
  int64_t contextSize() const override { return rows_.size(1); }
  std::vector<int64_t> nextRows(int64_t rows) override {
    std::vector<int64_t> out;
    for (int64_t r = 0; r < rows; ++r, ++next_) {
      const auto row = rows_[next_ % rows_.size(0)];
      out.insert(out.end(), row.data_ptr<int64_t>(), row.data_ptr<int64_t>() + row.numel());
    }
    return out;
  }
  std::string describe() const override { return "test rows"; }
  std::vector<std::pair<int64_t, int64_t>> callHistory() const override { return {{next_, 1}}; }
  void replayCalls(const std::vector<std::pair<int64_t, int64_t>>& history) override {
    for (const auto& [rows, calls] : history)
      next_ += rows * calls;
  }

 private:
  torch::Tensor rows_;
  int64_t next_ = 0;
};

std::shared_ptr<sae::Sae> referenceSae(const std::map<std::string, torch::Tensor>& g) {
  sae::SaeOptions options;
  options.d_in = 16;
  options.d_sae = 24;
  options.apply_b_dec_to_input = true;
  auto s = std::make_shared<sae::Sae>(options);
  s->loadTensors({{"W_enc", g.at("sae.W_enc")},
                  {"b_enc", g.at("sae.b_enc")},
                  {"W_dec", g.at("sae.W_dec")},
                  {"b_dec", g.at("sae.b_dec")}},
                 "reference SAE");
  return s;
}

}  // namespace

class TestLanguageModelSource : public QObject {
  Q_OBJECT

 private Q_SLOTS:
  void rowsAreTheHookValuesInOrderAcrossStoreBatches() {
    const auto g = goldens("gelu_new_2l");
    auto model =
        std::make_shared<sae::HookedTransformer>(ModelLoader::loadFolder(kModels + "gelu_new_2l"));
    const auto tokens = g.at("tokens");  // [2, 6]
    auto source = std::make_shared<RepeatingTokens>(tokens);
    LanguageModelActivationSource lm(model, source, "blocks.1.hook_mlp_out", std::nullopt, 1, 16);
    const auto expected = g.at("blocks.1.hook_mlp_out").reshape({-1, 16});  // 12 rows
    // 5 + 9 + 10 rows: crosses store batches (6 rows each) and the golden's two rows.
    const auto a = lm.next(5), b = lm.next(9), c = lm.next(10);
    const auto all = torch::cat({a, b, c});
    QCOMPARE(all.size(0), int64_t(24));
    QVERIFY(torch::allclose(all.slice(0, 0, 12), expected, 1e-5, 1e-5));
    QVERIFY(torch::allclose(all.slice(0, 12, 24), expected, 1e-5, 1e-5));
    QVERIFY(lm.shufflesBuffers());
    QVERIFY(contains(lm.describe(), "blocks.1.hook_mlp_out"));
  }

  void perHeadHooksSelectOrFlattenHeads() {
    const auto g = goldens("gelu_1l_safetensors");
    auto model = std::make_shared<sae::HookedTransformer>(
        ModelLoader::loadFolder(kModels + "gelu_1l_safetensors"));
    auto source = std::make_shared<RepeatingTokens>(g.at("tokens"));
    const auto z = g.at("blocks.0.attn.hook_z");  // [2, 6, 2, 8]
    LanguageModelActivationSource head(model, source, "blocks.0.attn.hook_z", int64_t(1), 2, 8);
    QVERIFY(torch::allclose(head.next(12), z.select(2, 1).reshape({12, 8}), 1e-5, 1e-5));
    LanguageModelActivationSource all(model, source, "blocks.0.attn.hook_z", std::nullopt, 2, 16);
    QVERIFY(torch::allclose(all.next(12), z.reshape({12, 16}), 1e-5, 1e-5));
    auto message = errorOf([&] {
      LanguageModelActivationSource(model, source, "blocks.0.hook_mlp_out", std::nullopt, 2, 512);
    });
    QVERIFY2(contains(message, "width 16") && contains(message, "d_in is 512"), message.c_str());
    message = errorOf([&] {
      LanguageModelActivationSource(model, source, "blocks.0.attn.hook_pattern", std::nullopt, 2,
                                    6);
    });
    QVERIFY2(contains(message, "one activation vector per token"), message.c_str());
    message = errorOf([&] {
      LanguageModelActivationSource(model, source, "blocks.3.hook_mlp_out", std::nullopt, 2, 16);
    });
    QVERIFY2(contains(message, "unknown hook point"), message.c_str());
  }

  void ceEvalsAndL2MetricsMatchTheReference() {
    const auto g = goldens("gelu_1l_safetensors");
    auto model = std::make_shared<sae::HookedTransformer>(
        ModelLoader::loadFolder(kModels + "gelu_1l_safetensors"));
    auto source = std::make_shared<RepeatingTokens>(g.at("tokens"));
    const auto saeModel = referenceSae(g);
    // Batches of the reference's 2 rows: the L2 batch first, then 3 CE batches, all the same.
    LanguageModelEvaluator evaluator(model, source, "blocks.0.hook_mlp_out", std::nullopt, 3, 2);
    const auto r = evaluator.run(*saeModel);
    const double clean = g.at("loss").item<double>(), recons = g.at("loss_splice").item<double>(),
                 zero = g.at("loss_zero_ablation").item<double>();
    QVERIFY(std::fabs(r.ce_loss_without_sae - clean) < 1e-5);
    QVERIFY(std::fabs(r.ce_loss_with_sae - recons) < 1e-5);
    QVERIFY(std::fabs(r.ce_loss_with_ablation - zero) < 1e-5);
    QVERIFY(std::fabs(r.ce_loss_score - (zero - recons) / (zero - clean)) < 1e-4);
    QVERIFY(std::fabs(r.l2_norm - g.at("l2_norm").item<double>()) < 1e-5);
    QVERIFY(std::fabs(r.l2_ratio - g.at("l2_ratio").item<double>()) < 1e-5);
    QVERIFY(std::fabs(r.l2_norm_in - g.at("l2_norm_in").item<double>()) < 1e-5);
    const auto metrics = r.metrics();
    QCOMPARE(metrics.size(), size_t(7));
    QCOMPARE(metrics.at("metrics/CE_loss_score"), r.ce_loss_score);
    QCOMPARE(LanguageModelEvaluator::ceLossScore(2.0, 3.0, 2.00001), 2.00001 - 3.0);
  }
};

QTEST_APPLESS_MAIN(TestLanguageModelSource)
#include "tst_language_model_source.moc"
