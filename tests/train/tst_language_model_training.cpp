// A whole language-model run through sae::TrainingRun (the CLI's and GUI's facade): the
// gelu_1l_safetensors fixture model, a 1-D .npy token stream, CE evals three times. The eval
// figures are checked against tests/reference/lm_training_reference.py, which runs an
// independent PyTorch forward pass over every packed row of the same stream: the evaluator
// draws its prompts from the training stream, so the test finds the rows it used (the only
// window of rows whose reference clean loss matches) and checks the ablation loss and the
// SAE-input norm on those same rows. Tolerances: 1e-5 relative (float32 forward passes of
// 8-token rows through different reduction orders).
#include <QTemporaryDir>
#include <QtTest>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <set>
#include <string>
#include <vector>

#include <torch/torch.h>
#include <nlohmann/json.hpp>

#include "config/RunConfig.h"
#include "formats/Safetensors.h"
#include "train/TrainingRun.h"

namespace fs = std::filesystem;

namespace {

const std::string kFixtures = std::string(SAEWB_FIXTURES_DIR) + "/lm_training";

bool close(double actual, double expected, double rel = 1e-5) {
  return std::abs(actual - expected) <= rel * std::max(1.0, std::abs(expected));
}

std::vector<nlohmann::json> readJsonl(const std::string& path) {
  std::vector<nlohmann::json> records;
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty()) records.push_back(nlohmann::json::parse(line));
  }
  return records;
}

}  // namespace

class TestLanguageModelTraining : public QObject {
  Q_OBJECT

 private Q_SLOTS:
  void trainsWithEvalsMatchingTheReference();
};

void TestLanguageModelTraining::trainsWithEvalsMatchingTheReference() {
  const sae::RunConfig config = sae::RunConfig::loadFile(kFixtures + "/config.json");
  QVERIFY(config.validate().empty());
  QTemporaryDir dir;
  QVERIFY(dir.isValid());
  const std::string out = dir.filePath("run").toStdString();
  {
    sae::TrainingRun run(config, out);
    QVERIFY(run.run());
    QCOMPARE(run.step(), config.totalSteps());
  }
  QVERIFY(fs::exists(fs::path(out) / "final" / "sae_weights.safetensors"));
  QVERIFY(fs::exists(fs::path(out) / "final" / "cfg.json"));

  const auto golden = sae::Safetensors::read(kFixtures + "/golden.safetensors");
  auto tensor = [&](const std::string& name) {
    for (const auto& [key, value] : golden)
      if (key == name) return value;
    throw std::runtime_error("golden has no " + name);
  };
  const torch::Tensor clean = tensor("clean_loss").to(torch::kFloat64);
  const torch::Tensor ablation = tensor("ablation_loss").to(torch::kFloat64);
  const torch::Tensor normIn = tensor("hook").to(torch::kFloat64).norm(2, -1).mean(-1);  // [N]
  const int64_t nRows = clean.size(0);
  const int64_t prompts = *config.eval_batch_size_prompts;
  QCOMPARE(config.n_eval_batches, int64_t(1));  // so the CE score formula holds exactly

  const int64_t evalEvery = config.wandb_log_frequency * config.eval_every_n_wandb_logs;
  std::set<int64_t> expectedSteps;
  for (int64_t s = 0; s < config.totalSteps(); ++s)
    if ((s + 1) % evalEvery == 0) expectedSteps.insert(s);
  QCOMPARE(expectedSteps.size(), size_t(3));

  const auto records = readJsonl(out + "/metrics.jsonl");
  QVERIFY(!records.empty());
  std::set<int64_t> evalSteps;
  int64_t lastWindow = -1;
  for (const auto& record : records) {
    const int64_t step = record.at("step").get<int64_t>();
    if (!record.contains("metrics/CE_loss_score")) {
      QVERIFY2(!expectedSteps.count(step), qPrintable(QString("no evals at step %1").arg(step)));
      continue;
    }
    evalSteps.insert(step);
    for (const char* key : {"metrics/ce_loss_without_sae", "metrics/ce_loss_with_sae",
                            "metrics/ce_loss_with_ablation", "metrics/l2_norm", "metrics/l2_ratio",
                            "metrics/l2_norm_in"}) {
      QVERIFY2(record.contains(key), key);
      QVERIFY(std::isfinite(record.at(key).get<double>()));
    }
    const double without = record.at("metrics/ce_loss_without_sae").get<double>();
    const double withSae = record.at("metrics/ce_loss_with_sae").get<double>();
    const double withAblation = record.at("metrics/ce_loss_with_ablation").get<double>();
    const double score = record.at("metrics/CE_loss_score").get<double>();

    // The eval batch: the one window of `prompts` consecutive stream rows whose reference
    // clean loss is the logged one.
    std::vector<int64_t> matches;
    for (int64_t w = 0; w + prompts <= nRows; ++w) {
      if (close(without, clean.narrow(0, w, prompts).mean().item<double>())) matches.push_back(w);
    }
    QVERIFY2(matches.size() == 1,
             qPrintable(QString("step %1: %2 windows of reference rows match clean loss %3")
                            .arg(step)
                            .arg(matches.size())
                            .arg(without)));
    const int64_t w = matches[0];
    QVERIFY2(w > lastWindow, "evals must draw later rows of the stream each time");
    lastWindow = w;
    QVERIFY(close(withAblation, ablation.narrow(0, w, prompts).mean().item<double>()));
    // run_evals draws the L2 batch first: the `prompts` rows right before the CE batch.
    QVERIFY(w >= prompts);
    QVERIFY(close(record.at("metrics/l2_norm_in").get<double>(),
                  normIn.narrow(0, w - prompts, prompts).mean().item<double>()));
    QVERIFY(record.at("metrics/l2_norm").get<double>() > 0);
    QVERIFY(record.at("metrics/l2_ratio").get<double>() > 0);
    // SAELens's score with one eval batch: (ablation - with SAE) / (ablation - clean).
    QVERIFY(std::abs(withAblation - without) > 1e-4);
    QVERIFY(close(score, (withAblation - withSae) / (withAblation - without), 1e-9));
  }
  QCOMPARE(evalSteps, expectedSteps);
}

QTEST_GUILESS_MAIN(TestLanguageModelTraining)
#include "tst_language_model_training.moc"
