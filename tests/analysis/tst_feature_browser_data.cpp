// FeatureBrowserData on a real run: the lm_training fixture (gelu_1l_safetensors model, a 1-D
// .npy token stream) trained for its 384 tokens with sae::TrainingRun, with the tokenizer
// fixture (whose <|BOS|> is id 1, the stream's BOS) copied next to the model. Every figure is
// checked against an independent computation here: the token rows from a fresh TokenSource
// called the same way, the hook's values from HookedTransformer::runWithCache, the features
// from the Sae class loading final/ with SaeFolder::loadWeights, W_dec . W_U with plain torch.
// Tolerances: counts and token ids exact; activations and logit effects 1e-5 relative (float32
// matmul against einsum of 16-wide rows: a few ulps).
#include <QTemporaryDir>
#include <QtTest>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "analysis/FeatureBrowserData.h"
#include "config/PresetLibrary.h"
#include "config/RunConfig.h"
#include "data/TokenSourceFactory.h"
#include "formats/TokenizerDecoder.h"
#include "model/ModelLoader.h"
#include "sae/Sae.h"
#include "sae/SaeFolder.h"
#include "support/QtTestStrings.h"
#include "train/TrainingRun.h"

namespace fs = std::filesystem;

namespace {

const std::string kFixtures = SAEWB_FIXTURES_DIR;

bool close(double actual, double expected, double rel = 1e-5) {
  return std::abs(actual - expected) <= rel * std::max(1.0, std::abs(expected));
}

// The hook's values on the first `rows` rows of the run's token stream, asked for
// store_batch_size rows at a time as the scan does (packing depends on the call sizes).
std::pair<torch::Tensor, torch::Tensor> firstRows(const sae::RunConfig& config,
                                                  const std::string& modelDir, int64_t rows) {
  const auto tokenSource = sae::TokenSourceFactory::create(config);
  std::vector<int64_t> ids;
  for (int64_t b = 0; b < rows / config.store_batch_size; ++b) {
    const auto batch = tokenSource->nextRows(config.store_batch_size);
    ids.insert(ids.end(), batch.begin(), batch.end());
  }
  const torch::Tensor tokens = torch::tensor(ids, torch::kInt64).view({rows, config.context_size});
  const sae::HookedTransformer model = sae::ModelLoader::loadFolder(modelDir);
  torch::NoGradGuard noGrad;
  const std::string hook = config.resolvedHookPoint();
  return {tokens, model.runWithCache(tokens, {hook}).at(hook).reshape({tokens.numel(), -1})};
}

}  // namespace

class TestFeatureBrowserData : public QObject {
  Q_OBJECT

 private Q_SLOTS:
  void initTestCase();
  void matchesADirectComputation();
  void roundTripsThroughJson();
  void showsIdsWithoutATokenizer();
  void stopsWhenTheDatasetRunsOut();
  void normalisedRunsUseTheFoldedWeights();
  void refusesRunsWithoutTokens();
  void namesWhatIsMissing();

 private:
  QTemporaryDir dir_;
  std::string modelDir_, runDir_;
  sae::RunConfig config_;
  sae::FeatureBrowserOptions options_;
  sae::FeatureBrowserData data_;
};

void TestFeatureBrowserData::initTestCase() {
  QVERIFY(dir_.isValid());
  modelDir_ = dir_.filePath("model").toStdString();
  fs::create_directories(modelDir_);
  for (const char* file : {"config.json", "model.safetensors"}) {
    fs::copy_file(kFixtures + "/model/gelu_1l_safetensors/" + file, modelDir_ + "/" + file);
  }
  fs::copy_file(kFixtures + "/tokenizer/tokenizer.json", modelDir_ + "/tokenizer.json");
  config_ = sae::RunConfig::loadFile(kFixtures + "/lm_training/config.json");
  config_.model_name = modelDir_;
  QVERIFY(config_.validate().empty());
  runDir_ = dir_.filePath("run").toStdString();
  {
    sae::TrainingRun run(config_, runDir_);
    QVERIFY(run.run());
  }
  options_.tokens = 1000;  // 32 batches of 4 rows x 8 tokens = 1024 tokens
  options_.topK = 5;
  options_.contextBefore = 3;
  options_.contextAfter = 2;
  options_.logitCount = 4;
  int64_t lastDone = -1;
  bool monotone = true;
  data_ = sae::FeatureBrowserData::compute(runDir_, options_,
                                           [&](int64_t done, int64_t, const std::string&) {
                                             monotone = monotone && done >= lastDone;
                                             lastDone = done;
                                             return true;
                                           });
  QVERIFY(monotone);
  QCOMPARE(lastDone, int64_t(1024));
}

void TestFeatureBrowserData::matchesADirectComputation() {
  const int64_t context = config_.context_size;  // 8
  const int64_t rows = 128;
  QCOMPARE(data_.tokensScanned, rows * context);
  QVERIFY(data_.scanNote.empty());
  QCOMPARE(data_.hookPoint, std::string("blocks.0.hook_mlp_out"));
  QCOMPARE(data_.weightsFile, runDir_ + "/final/sae_weights.safetensors");
  QVERIFY(!data_.estimatedActivationScale);

  const auto [tokens, x] = firstRows(config_, modelDir_, rows);
  const sae::HookedTransformer model = sae::ModelLoader::loadFolder(modelDir_);
  torch::NoGradGuard noGrad;
  sae::Sae sae(sae::SaeOptions::fromConfig(config_));
  sae::SaeFolder::loadWeights(runDir_ + "/final", sae);
  const torch::Tensor acts = sae.encodeWithHiddenPre(x).first;  // [1024, 32]
  const int64_t dSae = acts.size(1);
  QCOMPARE(static_cast<int64_t>(data_.features.size()), dSae);

  const torch::Tensor W_U = [&] {
    for (const auto& [name, t] : model.stateDict())
      if (name == "unembed.W_U") return t;
    return torch::Tensor();
  }();
  const torch::Tensor effects = torch::matmul(sae.W_dec, W_U);  // [d_sae, d_vocab]
  const sae::TokenizerDecoder decoder = sae::TokenizerDecoder::load(modelDir_ + "/tokenizer.json");

  int64_t alive = 0;
  for (int64_t f = 0; f < dSae; ++f) {
    const sae::FeatureRecord& r = data_.features[static_cast<size_t>(f)];
    QCOMPARE(r.index, f);
    const torch::Tensor column = acts.select(1, f);
    const int64_t count = (column > 0).sum().item<int64_t>();
    QCOMPARE(r.firingCount, count);
    QCOMPARE(r.density, double(count) / 1024.0);
    QVERIFY2(close(r.maxActivation, column.max().item<double>()), qPrintable(QString::number(f)));
    QCOMPARE(r.histogram.total(), count);
    QCOMPARE(static_cast<int64_t>(r.contexts.size()), std::min<int64_t>(count, options_.topK));
    QVERIFY(close(r.decoderNorm, sae.W_dec[f].norm().item<double>()));
    if (count == 0) continue;
    ++alive;
    QVERIFY(close(r.meanActivation, column.sum().item<double>() / double(count)));
    // The top contexts are the top activations of the column, in descending order.
    const auto [topValues, topIndex] = column.topk(static_cast<int64_t>(r.contexts.size()));
    QCOMPARE(r.contexts.front().activation, r.maxActivation);
    for (size_t j = 0; j < r.contexts.size(); ++j) {
      const sae::FeatureContext& c = r.contexts[j];
      if (j > 0) QVERIFY(c.activation <= r.contexts[j - 1].activation);
      QVERIFY(close(c.activation, topValues[static_cast<int64_t>(j)].item<double>()));
      QVERIFY(close(c.activation, acts[c.row * context + c.position][f].item<double>()));
      // The window: up to 3 tokens before and 2 after, within the row.
      const int64_t first = std::max<int64_t>(0, c.position - 3);
      const int64_t last = std::min<int64_t>(context - 1, c.position + 2);
      QCOMPARE(static_cast<int64_t>(c.tokens.size()), last - first + 1);
      QCOMPARE(c.firingIndex, static_cast<int>(c.position - first));
      for (int64_t p = first; p <= last; ++p)
        QCOMPARE(c.tokens[static_cast<size_t>(p - first)], tokens[c.row][p].item<int64_t>());
    }
    // Logit effects: W_dec[f] . W_U, top 4 each way.
    const auto [posV, posI] = effects[f].topk(4);
    const auto [negV, negI] = effects[f].topk(4, 0, /*largest=*/false);
    QCOMPARE(r.positiveLogits.size(), size_t(4));
    QCOMPARE(r.negativeLogits.size(), size_t(4));
    for (int64_t j = 0; j < 4; ++j) {
      QCOMPARE(r.positiveLogits[size_t(j)].token, posI[j].item<int64_t>());
      QVERIFY(close(r.positiveLogits[size_t(j)].value, posV[j].item<double>()));
      QCOMPARE(r.negativeLogits[size_t(j)].token, negI[j].item<int64_t>());
      QVERIFY(close(r.negativeLogits[size_t(j)].value, negV[j].item<double>()));
    }
  }
  QVERIFY2(alive >= dSae / 2, qPrintable(QString("only %1 features fire").arg(alive)));

  // Decoded with the model folder's tokenizer.
  QCOMPARE(data_.tokenizerPath, modelDir_ + "/tokenizer.json");
  QCOMPARE(static_cast<int64_t>(data_.vocabulary.size()), model.config().d_vocab);
  for (int64_t id = 0; id < model.config().d_vocab; ++id)
    QCOMPARE(data_.tokenText(id), decoder.tokenText(id));
  QCOMPARE(data_.tokenText(1), std::string("<|BOS|>"));
}

void TestFeatureBrowserData::roundTripsThroughJson() {
  const std::string path = dir_.filePath("features.json").toStdString();
  data_.save(path);
  const sae::FeatureBrowserData back = sae::FeatureBrowserData::load(path);
  QVERIFY(back.toJson() == data_.toJson());
  QCOMPARE(back.features[3].contexts.size(), data_.features[3].contexts.size());
  QVERIFY(back.isCurrentFor(runDir_, options_));
  sae::FeatureBrowserOptions other = options_;
  other.topK = 6;
  QVERIFY(!back.isCurrentFor(runDir_, other));

  QVERIFY_EXCEPTION_THROWN(sae::FeatureBrowserData::fromJson({{"format", "x"}}, "f.json"),
                           std::runtime_error);
  nlohmann::json damaged = data_.toJson();
  damaged["features"][0].erase("contexts");
  try {
    sae::FeatureBrowserData::fromJson(damaged, "f.json");
    QFAIL("a damaged file loaded");
  } catch (const std::runtime_error& error) {
    const std::string message = error.what();
    QVERIFY2(message.find("f.json is damaged") != std::string::npos, error.what());
    QVERIFY2(message.find("contexts") != std::string::npos, error.what());
  }
}

void TestFeatureBrowserData::showsIdsWithoutATokenizer() {
  const std::string stash = dir_.filePath("tokenizer.json").toStdString();
  fs::rename(modelDir_ + "/tokenizer.json", stash);
  sae::FeatureBrowserOptions small = options_;
  small.tokens = 64;
  const auto data = sae::FeatureBrowserData::compute(runDir_, small);
  fs::rename(stash, modelDir_ + "/tokenizer.json");
  QVERIFY(data.tokenizerPath.empty());
  QVERIFY(data.vocabulary.empty());
  QCOMPARE(data.tokenText(7), std::string("<7>"));
  QCOMPARE(data.tokensScanned, int64_t(64));
  // The first 64 tokens are the first two batches of the bigger scan: same counts there.
  for (const auto& r : data.features)
    QVERIFY(r.firingCount <= data_.features[static_cast<size_t>(r.index)].firingCount);
}

void TestFeatureBrowserData::stopsWhenTheDatasetRunsOut() {
  sae::FeatureBrowserOptions big = options_;
  big.tokens = 100000;  // the fixture stream has 2402 tokens
  const auto data = sae::FeatureBrowserData::compute(runDir_, big);
  QVERIFY(data.tokensScanned > 1024);
  QVERIFY(data.tokensScanned < 3000);
  QCOMPARE(data.tokensScanned % 32, int64_t(0));
  QVERIFY2(data.scanNote.find("stopped after") != std::string::npos, data.scanNote.c_str());
  QVERIFY2(data.scanNote.find("ran out of tokens") != std::string::npos, data.scanNote.c_str());
}

void TestFeatureBrowserData::normalisedRunsUseTheFoldedWeights() {
  sae::RunConfig config = config_;
  config.normalize_activations = true;
  QVERIFY(config.validate().empty());
  const std::string run = dir_.filePath("normalised").toStdString();
  {
    sae::TrainingRun training(config, run);
    QVERIFY(training.run());
  }
  sae::FeatureBrowserOptions small = options_;
  small.tokens = 256;  // 8 batches of 4 rows
  const auto data = sae::FeatureBrowserData::compute(run, small);
  QVERIFY(!data.estimatedActivationScale);  // the saved weights have the factor folded in

  // The SAE as trained (SaeFolder::loadWeights unfolds it) on the activations times the run's
  // factor fires exactly where the folded weights on the model's own activations do.
  std::ifstream in(run + "/final/cfg.json");
  const nlohmann::json cfg = nlohmann::json::parse(in);
  const double factor = cfg.at("activation_norm_scaling_factor_folded").get<double>();
  QVERIFY(factor > 0 && factor != 1.0);
  const auto [tokens, x] = firstRows(config, modelDir_, 32);
  torch::NoGradGuard noGrad;
  sae::Sae sae(sae::SaeOptions::fromConfig(config));
  sae::SaeFolder::loadWeights(run + "/final", sae);
  const torch::Tensor acts = sae.encodeWithHiddenPre(x * factor).first;
  for (const auto& r : data.features) {
    const torch::Tensor column = acts.select(1, r.index);
    QCOMPARE(r.firingCount, (column > 0).sum().item<int64_t>());
    QVERIFY(close(r.maxActivation, column.max().item<double>()));
  }

  // A folder that says its weights expect normalised activations gets the factor estimated on
  // the first batch: sqrt(d_in) / mean row norm of its 32 activation rows.
  nlohmann::json unfolded = cfg;
  unfolded.erase("activation_norm_scaling_factor_folded");
  unfolded["normalize_activations"] = "expected_average_only_in";
  std::ofstream(run + "/final/cfg.json") << unfolded.dump(2);
  const auto estimated = sae::FeatureBrowserData::compute(run, small);
  QVERIFY(estimated.estimatedActivationScale);
  const double expected = std::sqrt(16.0) / x.slice(0, 0, 32).norm(2, {1}).mean().item<double>();
  QVERIFY2(close(*estimated.estimatedActivationScale, expected, 1e-6),
           qPrintable(QString("%1 vs %2").arg(*estimated.estimatedActivationScale).arg(expected)));
}

void TestFeatureBrowserData::refusesRunsWithoutTokens() {
  const std::string synthetic = dir_.filePath("synthetic").toStdString();
  fs::create_directories(synthetic);
  sae::PresetLibrary::load("synthetic-demo").saveFile(synthetic + "/config.json");
  try {
    sae::FeatureBrowserData::compute(synthetic);
    QFAIL("a synthetic run was browsed");
  } catch (const std::runtime_error& error) {
    QVERIFY2(std::string(error.what()).find("synthetic activations") != std::string::npos,
             error.what());
    QVERIFY2(std::string(error.what()).find("no tokens") != std::string::npos, error.what());
  }
}

void TestFeatureBrowserData::namesWhatIsMissing() {
  const std::string empty = dir_.filePath("empty").toStdString();
  fs::create_directories(empty);
  try {
    sae::FeatureBrowserData::compute(empty);
    QFAIL("a folder without config.json was browsed");
  } catch (const std::runtime_error& error) {
    QVERIFY2(std::string(error.what()).find("no config.json") != std::string::npos, error.what());
  }
  fs::copy_file(runDir_ + "/config.json", empty + "/config.json");
  try {
    sae::FeatureBrowserData::compute(empty);
    QFAIL("a run without weights was browsed");
  } catch (const std::runtime_error& error) {
    QVERIFY2(std::string(error.what()).find("has no SAE yet") != std::string::npos, error.what());
  }
  sae::FeatureBrowserOptions bad;
  bad.topK = 0;
  QVERIFY_EXCEPTION_THROWN(sae::FeatureBrowserData::compute(runDir_, bad), std::invalid_argument);
}

QTEST_GUILESS_MAIN(TestFeatureBrowserData)
#include "tst_feature_browser_data.moc"
