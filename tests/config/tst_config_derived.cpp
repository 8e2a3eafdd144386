// Derived values: the verbose preamble byte-for-byte against the seed notebook and against
// CPython for other configs, run names, step counts, hook point and cache path.
#include <QtTest>

#include <cstdlib>
#include <fstream>
#include <thread>

#include <nlohmann/json.hpp>

#include "config/PresetLibrary.h"
#include "config/RunConfig.h"
#include "support/JsonFixtures.h"
#include "support/QtTestStrings.h"

using sae::RunConfig;
using saetest::loadFixture;
using json = nlohmann::json;

namespace {

double decode(const json& value) {
  return std::strtod(value.get<std::string>().c_str(), nullptr);
}

}  // namespace

class TestConfigDerived : public QObject {
  Q_OBJECT

 private Q_SLOTS:
  // The nine lines the seed notebook printed, copied verbatim into the fixture.
  void preambleMatchesSeedNotebook() {
    std::ifstream in(SAEWB_FIXTURES_DIR "/config/seed_preamble.txt", std::ios::binary);
    std::vector<std::string> seed;
    for (std::string line; std::getline(in, line);)
      seed.push_back(line);
    QCOMPARE(seed.size(), size_t(9));
    const RunConfig config = sae::PresetLibrary::load("how-we-train-saes-gelu-1l");
    const auto lines = config.preambleLines();
    QCOMPARE(lines.size(), size_t(9));
    for (size_t i = 0; i < seed.size(); ++i)
      QCOMPARE(lines[i], seed[i]);
    QCOMPARE(lines[0], std::string("Run name: 32768-L1-0.005-LR-5e-05-Tokens-8.192e+07"));
  }

  void preambleMatchesPython() {
    const auto fixture = loadFixture("config/python_format.json");
    QCOMPARE(fixture["preambles"].size(), size_t(5));
    for (const auto& entry : fixture["preambles"]) {
      const json& c = entry["config"];
      RunConfig config;
      config.d_in = c["d_in"];
      config.expansion_factor = c["expansion_factor"];
      config.l1_coefficient = decode(c["l1_coefficient"]);
      config.lr = decode(c["lr"]);
      config.training_tokens = c["training_tokens"];
      config.finetuning_tokens = c["finetuning_tokens"];
      config.store_batch_size = c["store_batch_size"];
      config.context_size = c["context_size"];
      config.n_batches_in_buffer = c["n_batches_in_buffer"];
      config.train_batch_size = c["train_batch_size"];
      config.wandb_log_frequency = c["wandb_log_frequency"];
      config.feature_sampling_window = c["feature_sampling_window"];
      config.dead_feature_window = c["dead_feature_window"];
      config.use_ghost_grads = c["use_ghost_grads"];
      const auto expected = entry["lines"].get<std::vector<std::string>>();
      QCOMPARE(config.preambleLines(), expected);
    }
  }

  void ghostGradsLine() {
    RunConfig config;
    QCOMPARE(config.preambleLines().size(), size_t(9));
    config.use_ghost_grads = true;
    QCOMPARE(config.preambleLines().size(), size_t(10));
    QCOMPARE(config.preambleLines().back(), std::string("Using Ghost Grads."));
    // Printed even when run_name is set (SAELens recomputes it).
    config.run_name = "mine";
    QCOMPARE(config.preambleLines()[0],
             std::string("Run name: 2048-L1-0.001-LR-0.0003-Tokens-2.000e+06"));
  }

  void runNamesMatchPython() {
    const auto fixture = loadFixture("config/python_format.json");
    QVERIFY(fixture["run_names"].size() >= 5);
    for (const auto& entry : fixture["run_names"]) {
      RunConfig config;
      config.d_in = entry["d_in"];
      config.expansion_factor = entry["expansion_factor"];
      config.l1_coefficient = decode(entry["l1_coefficient"]);
      config.lr = decode(entry["lr"]);
      config.training_tokens = entry["training_tokens"];
      QCOMPARE(config.defaultRunName(), entry["run_name"].get<std::string>());
    }
  }

  void runNameChoice() {
    RunConfig config;
    QCOMPARE(config.effectiveRunName(), config.defaultRunName());
    config.run_name = "custom";
    QCOMPARE(config.effectiveRunName(), std::string("custom"));
    // finetuning_tokens is not part of the name (as SAELens).
    config.finetuning_tokens = 1000000;
    QCOMPARE(config.defaultRunName(), std::string("2048-L1-0.001-LR-0.0003-Tokens-2.000e+06"));
  }

  void counts() {
    RunConfig config;
    QCOMPARE(config.derivedDSae(), int64_t(2048));
    QCOMPARE(config.totalTrainingTokens(), int64_t(2000000));
    QCOMPARE(config.totalSteps(), int64_t(488));  // floor division
    config.finetuning_tokens = 96000;
    QCOMPARE(config.totalTrainingTokens(), int64_t(2096000));
    QCOMPARE(config.totalSteps(), int64_t(511));
    config.train_batch_size = 0;
    QCOMPARE(config.totalSteps(), int64_t(0));  // no division by zero
    QCOMPARE(config.effectiveLrEnd(), 3e-4 / 10);
    config.lr_end = 1e-6;
    QCOMPARE(config.effectiveLrEnd(), 1e-6);
    QCOMPARE(config.effectiveEvalBatchSizePrompts(), int64_t(32));
    config.eval_batch_size_prompts = 4;
    QCOMPARE(config.effectiveEvalBatchSizePrompts(), int64_t(4));
    config.hook_point_layer = 3;
    QCOMPARE(config.hookLayer(), 3);
  }

  void hookPointAndCachePath() {
    RunConfig config;
    QCOMPARE(config.resolvedHookPoint(), std::string("blocks.0.hook_mlp_out"));
    config.hook_point_layer = 5;
    QCOMPARE(config.resolvedHookPoint(), std::string("blocks.5.hook_mlp_out"));
    config.hook_point = "blocks.{layer}.attn.hook_z.{layer}";
    QCOMPARE(config.resolvedHookPoint(), std::string("blocks.5.attn.hook_z.5"));

    RunConfig gelu = sae::PresetLibrary::load("how-we-train-saes-gelu-1l");
    QCOMPARE(gelu.resolvedCachedActivationsPath(),
             std::string("activations/NeelNanda_c4-tokenized-2b/gelu-1l/blocks.0.hook_mlp_out"));
    gelu.model_name = "org/model";
    gelu.hook_point = "blocks.{layer}.attn.hook_z";
    gelu.hook_point_layer = 2;
    gelu.hook_point_head_index = 7;
    QCOMPARE(gelu.resolvedCachedActivationsPath(),
             std::string("activations/NeelNanda_c4-tokenized-2b/org_model/blocks.2.attn.hook_z_7"));
    gelu.cached_activations_path = "/my/cache";
    QCOMPARE(gelu.resolvedCachedActivationsPath(), std::string("/my/cache"));
  }

  void threads() {
    RunConfig config;
    config.num_threads = 3;
    QCOMPARE(config.effectiveNumThreads(), 3);
    config.num_threads = 0;
    const int hardware = static_cast<int>(std::thread::hardware_concurrency());
    QCOMPARE(config.effectiveNumThreads(), std::max(1, hardware));
  }
};

QTEST_APPLESS_MAIN(TestConfigDerived)
#include "tst_config_derived.moc"
