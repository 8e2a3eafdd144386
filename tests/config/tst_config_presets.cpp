// PresetLibrary: both built-in presets are found, load, validate and hold the values they
// promise; unknown names list what exists; SAEWB_PRESETS_DIR takes precedence.
#include <QTemporaryDir>
#include <QtTest>

#include <cstdlib>
#include <fstream>

#include <nlohmann/json.hpp>

#include "config/ConfigError.h"
#include "config/PresetLibrary.h"
#include "config/RunConfig.h"
#include "support/QtTestStrings.h"

using sae::ConfigError;
using sae::PresetLibrary;
using sae::RunConfig;

namespace {

bool contains(const std::vector<std::string>& list, const std::string& item) {
  return std::find(list.begin(), list.end(), item) != list.end();
}

}  // namespace

class TestConfigPresets : public QObject {
  Q_OBJECT

 private Q_SLOTS:
  void init() { ::unsetenv("SAEWB_PRESETS_DIR"); }

  void listsBuiltInPresets() {
    const auto names = PresetLibrary::names();
    QVERIFY(contains(names, "how-we-train-saes-gelu-1l"));
    QVERIFY(contains(names, "synthetic-demo"));
    QVERIFY(std::is_sorted(names.begin(), names.end()));
    QVERIFY(!PresetLibrary::searchDirs().empty());
  }

  void everyPresetIsValid() {
    for (const auto& name : PresetLibrary::names()) {
      const RunConfig config = PresetLibrary::load(name);  // throws on any issue
      QVERIFY2(config.validate().empty(), name.c_str());
    }
  }

  void notebookPreset() {
    const RunConfig c = PresetLibrary::load("how-we-train-saes-gelu-1l");
    QCOMPARE(c.model_name, std::string("gelu-1l"));
    QCOMPARE(c.hook_point, std::string("blocks.0.hook_mlp_out"));
    QCOMPARE(c.hook_point_layer, int64_t(0));
    QCOMPARE(c.d_in, int64_t(512));
    QCOMPARE(c.dataset_path, std::string("NeelNanda/c4-tokenized-2b"));
    QCOMPARE(c.context_size, int64_t(1024));
    QVERIFY(c.is_dataset_tokenized);
    QVERIFY(!c.prepend_bos);
    QCOMPARE(c.expansion_factor, int64_t(64));
    QCOMPARE(c.d_sae.value_or(-1), int64_t(32768));
    QCOMPARE(c.training_tokens, int64_t(81920000));
    QCOMPARE(c.train_batch_size, int64_t(4096));
    QVERIFY(!c.mse_loss_normalization);
    QCOMPARE(c.l1_coefficient, 0.005);
    QCOMPARE(c.lp_norm, 1.0);
    QVERIFY(c.scale_sparsity_penalty_by_decoder_norm);
    QCOMPARE(c.lr_scheduler_name, std::string("constant"));
    QCOMPARE(c.l1_warm_up_steps, int64_t(1000));
    QCOMPARE(c.lr_warm_up_steps, int64_t(0));
    QCOMPARE(c.lr_decay_steps, int64_t(0));  // the notebook passes lr_warm_up_steps (0) here
    QVERIFY(!c.use_ghost_grads);
    QVERIFY(!c.apply_b_dec_to_input);
    QCOMPARE(c.b_dec_init_method, std::string("zeros"));
    QVERIFY(!c.normalize_sae_decoder);
    QVERIFY(c.decoder_heuristic_init);
    QVERIFY(c.init_encoder_as_decoder_transpose);
    QCOMPARE(c.lr, 5e-05);
    QCOMPARE(c.adam_beta1, 0.9);
    QCOMPARE(c.adam_beta2, 0.999);
    QCOMPARE(c.n_batches_in_buffer, int64_t(64));
    QCOMPARE(c.store_batch_size, int64_t(16));
    QVERIFY(!c.normalize_activations);
    QCOMPARE(c.feature_sampling_window, int64_t(1000));
    QCOMPARE(c.dead_feature_window, int64_t(1000));
    QCOMPARE(c.dead_feature_threshold, 1e-4);
    QVERIFY(c.log_to_wandb);
    QCOMPARE(c.wandb_project, std::string("how_we_train_SAEs_replication_1"));
    QCOMPARE(c.wandb_log_frequency, int64_t(50));
    QCOMPARE(c.device, std::string("cpu"));
    QCOMPARE(c.seed, int64_t(42));
    QCOMPARE(c.n_checkpoints, int64_t(0));
    QCOMPARE(c.checkpoint_path, std::string("checkpoints"));
    QCOMPARE(c.dtype, std::string("torch.float32"));
    QCOMPARE(c.totalSteps(), int64_t(20000));
    QVERIFY(!c.use_synthetic_activations);
  }

  void syntheticPreset() {
    const RunConfig c = PresetLibrary::load("synthetic-demo");
    QVERIFY(c.use_synthetic_activations);
    QCOMPARE(c.model_name, std::string(""));
    QCOMPARE(c.d_in, int64_t(64));
    QCOMPARE(c.expansion_factor, int64_t(8));
    QCOMPARE(c.derivedDSae(), int64_t(512));
    QCOMPARE(c.synthetic_n_features, int64_t(256));
    QCOMPARE(c.synthetic_feature_probability, 0.02);
    QCOMPARE(c.synthetic_noise_std, 0.0);
    QCOMPARE(c.context_size, int64_t(128));
    QCOMPARE(c.store_batch_size, int64_t(8));
    QCOMPARE(c.n_batches_in_buffer, int64_t(8));
    QCOMPARE(c.train_batch_size, int64_t(1024));
    QCOMPARE(c.training_tokens, int64_t(3072000));
    QCOMPARE(c.totalSteps(), int64_t(3000));
    QCOMPARE(c.l1_coefficient, 0.2);
    QCOMPARE(c.l1_warm_up_steps, int64_t(150));
    QCOMPARE(c.lr, 1e-3);
    QCOMPARE(c.lr_decay_steps, int64_t(600));
    QCOMPARE(c.lr_warm_up_steps, int64_t(0));
    QCOMPARE(c.lr_scheduler_name, std::string("constant"));
    QVERIFY(!c.apply_b_dec_to_input);
    QCOMPARE(c.b_dec_init_method, std::string("zeros"));
    QVERIFY(!c.normalize_sae_decoder);
    QVERIFY(c.decoder_heuristic_init);
    QVERIFY(c.init_encoder_as_decoder_transpose);
    QVERIFY(c.scale_sparsity_penalty_by_decoder_norm);
    QCOMPARE(c.adam_beta1, 0.9);
    QCOMPARE(c.adam_beta2, 0.999);
    QCOMPARE(c.wandb_log_frequency, int64_t(10));
    QCOMPARE(c.feature_sampling_window, int64_t(500));
    QCOMPARE(c.dead_feature_window, int64_t(500));
    QCOMPARE(c.dtype, std::string("float32"));
    QCOMPARE(c.device, std::string("cpu"));
    QCOMPARE(c.n_checkpoints, int64_t(2));
  }

  void nameWithSuffixAndPath() {
    const std::string path = PresetLibrary::pathOf("synthetic-demo.json");
    QVERIFY(path.size() > 5 && path.substr(path.size() - 19) == "synthetic-demo.json");
    QCOMPARE(PresetLibrary::load("synthetic-demo.json").d_in, int64_t(64));
  }

  void unknownPresetListsNames() {
    try {
      PresetLibrary::load("gelu-2l");
      QFAIL("no error");
    } catch (const ConfigError& error) {
      const std::string what = error.what();
      QVERIFY2(what.find("unknown preset 'gelu-2l'") != std::string::npos, what.c_str());
      QVERIFY2(what.find("how-we-train-saes-gelu-1l") != std::string::npos, what.c_str());
      QVERIFY2(what.find("synthetic-demo") != std::string::npos, what.c_str());
    }
  }

  void environmentFolderComesFirst() {
    QTemporaryDir dir;
    QVERIFY(dir.isValid());
    // Shadows the built-in synthetic-demo and adds a new name.
    {
      std::ofstream out(dir.filePath("synthetic-demo.json").toStdString());
      out << R"({"use_synthetic_activations": true, "model_name": "", "d_in": 16})";
      std::ofstream other(dir.filePath("mine.json").toStdString());
      other << R"({"lr": 0.01})";
    }
    ::setenv("SAEWB_PRESETS_DIR", dir.path().toUtf8().constData(), 1);
    const auto dirs = PresetLibrary::searchDirs();
    QCOMPARE(dirs.front(), dir.path().toStdString());
    QCOMPARE(PresetLibrary::load("synthetic-demo").d_in, int64_t(16));
    QVERIFY(contains(PresetLibrary::names(), "mine"));
    QVERIFY(contains(PresetLibrary::names(), "how-we-train-saes-gelu-1l"));
    QCOMPARE(PresetLibrary::load("how-we-train-saes-gelu-1l").d_in, int64_t(512));
    ::unsetenv("SAEWB_PRESETS_DIR");
  }
};

QTEST_APPLESS_MAIN(TestConfigPresets)
#include "tst_config_presets.moc"
