// Sweeps (issue 5 §5): list values expand into SAELens's Cartesian product (order, names,
// metric suffixes), fields that define the shared activations are refused with a message
// naming them, and a sweep trains every SAE on the same batches so that each ends bit for bit
// as a single run of its own config. Also the sweep folder's layout and a stopped sweep.
#include <QTemporaryDir>
#include <QtTest>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

#include <torch/torch.h>
#include <nlohmann/json.hpp>

#include "config/ConfigError.h"
#include "config/ConfigSchema.h"
#include "config/SweepExpansion.h"
#include "formats/Safetensors.h"
#include "runs/RunManifest.h"
#include "train/SweepRun.h"
#include "train/Trainer.h"
#include "train/TrainingRun.h"

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

// The tiny synthetic run: 20 steps of 64 rows, a few milliseconds each.
json tinyConfig() {
  return json{{"model_name", "tiny"},
              {"dataset_path", ""},
              {"use_synthetic_activations", true},
              {"synthetic_n_features", 32},
              {"synthetic_feature_probability", 0.05},
              {"synthetic_noise_std", 0.01},
              {"d_in", 16},
              {"expansion_factor", 2},
              {"context_size", 16},
              {"store_batch_size", 2},
              {"n_batches_in_buffer", 4},
              {"train_batch_size", 64},
              {"training_tokens", 64 * 20},
              {"l1_coefficient", 0.5},
              {"l1_warm_up_steps", 4},
              {"lr", 3e-3},
              {"lr_warm_up_steps", 2},
              {"lr_decay_steps", 0},
              {"normalize_sae_decoder", true},
              {"b_dec_init_method", "geometric_median"},
              {"feature_sampling_window", 7},
              {"dead_feature_window", 5},
              {"wandb_log_frequency", 1},
              {"n_checkpoints", 2},
              {"num_threads", 1},
              {"seed", 11}};
}

std::string errorOf(const std::function<void()>& action) {
  try {
    action();
  } catch (const std::exception& error) {
    return error.what();
  }
  return "(no error)";
}

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

json readJson(const fs::path& path) {
  std::ifstream in(path);
  return json::parse(in);
}

// Every tensor of two safetensors files, compared bit for bit.
void compareTensorFiles(const fs::path& a, const fs::path& b) {
  const auto left = sae::Safetensors::read(a.string());
  const auto right = sae::Safetensors::read(b.string());
  QCOMPARE(left.size(), right.size());
  for (size_t i = 0; i < left.size(); ++i) {
    QCOMPARE(QString::fromStdString(left[i].first), QString::fromStdString(right[i].first));
    QVERIFY2(torch::equal(left[i].second, right[i].second),
             (a.string() + " / " + left[i].first + " differs from " + b.string()).c_str());
  }
}

class StopSweepAfter : public sae::TrainingObserver {
 public:
  StopSweepAfter(sae::SweepRun& run, int64_t steps) : run_(run), steps_(steps) {}
  void onProgress(const sae::ProgressEvent& event) override {
    if (event.step >= steps_) run_.requestStop();
  }

 private:
  sae::SweepRun& run_;
  int64_t steps_;
};

}  // namespace

class TestSweep : public QObject {
  Q_OBJECT

 private Q_SLOTS:
  void initTestCase() {
    // Whatever is measured once per process on the first step of a shape (the GEMM kernel
    // choice) is measured here, so the sweeps and the single runs below, in one process, all
    // run with it done.
    for (const int expansion : {2, 4}) {
      json object = tinyConfig();
      object["expansion_factor"] = expansion;
      object["training_tokens"] = 64 * 2;
      sae::TrainingRun warmUp(sae::RunConfig::fromJson(object), "");
      QVERIFY(warmUp.run());
    }
  }

  void productOrderNamesAndSuffixes() {
    json object = tinyConfig();
    // Written lr first: SAELens's declaration order (l1_coefficient before lr) decides.
    object["lr"] = json::array({0.001, 0.003});
    object["l1_coefficient"] = json::array({2, 5.0});
    const auto combinations = sae::SweepExpansion::expand(object);
    QCOMPARE(combinations.size(), size_t(4));
    const std::vector<std::pair<double, double>> expected = {
        {2, 0.001}, {2, 0.003}, {5, 0.001}, {5, 0.003}};  // itertools.product: last fastest
    for (size_t i = 0; i < 4; ++i) {
      QCOMPARE(combinations[i].index, i);
      QCOMPARE(combinations[i].config.l1_coefficient, expected[i].first);
      QCOMPARE(combinations[i].config.lr, expected[i].second);
      QCOMPARE(combinations[i].config.d_sae, std::optional<int64_t>(32));
    }
    // Python's str() of each value as written: 2 stays "2", 5.0 is "5.0".
    QCOMPARE(combinations[0].saeName,
             std::string("tiny_blocks.0.hook_mlp_out_32_l1_coefficient_2_lr_0.001"));
    QCOMPARE(combinations[3].saeName,
             std::string("tiny_blocks.0.hook_mlp_out_32_l1_coefficient_5.0_lr_0.003"));
    QCOMPARE(combinations[0].folderName, combinations[0].saeName);
    QCOMPARE(combinations[1].metricSuffix, std::string("_coeff2_lr0.003"));
    QCOMPARE(combinations[2].values.dump(), std::string(R"({"l1_coefficient":5.0,"lr":0.001})"));

    // Three lists: expansion_factor is declared first, so it is the slowest digit; d_sae is
    // derived per combination and part of the name; lr_end null is lr / 10 in the suffix.
    json three = tinyConfig();
    three["expansion_factor"] = json::array({2, 4});
    three["lr_end"] = json::array({nullptr, 1e-5});
    three["adam_beta1"] = json::array({0, 0.9, 0.99});
    const auto grid = sae::SweepExpansion::expand(three);
    QCOMPARE(grid.size(), size_t(12));
    QCOMPARE(grid[0].saeName, std::string("tiny_blocks.0.hook_mlp_out_32_expansion_factor_2_"
                                          "adam_beta1_0_lr_end_None"));
    QCOMPARE(grid[0].metricSuffix,
             std::string("_expansion_factor2_adam_beta10_lr_end0.00030000000000000003"));
    QCOMPARE(grid[7].config.expansion_factor, int64_t(4));
    QCOMPARE(grid[7].config.d_sae, std::optional<int64_t>(64));
    QCOMPARE(grid[7].config.adam_beta1, 0.0);
    QCOMPARE(grid[7].config.lr_end, std::optional<double>(1e-5));
    QCOMPARE(grid[11].saeName, std::string("tiny_blocks.0.hook_mlp_out_64_expansion_factor_4_"
                                           "adam_beta1_0.99_lr_end_1e-05"));

    // A model name with a '/' (hub names) keeps it in the name, not in the folder.
    json hub = tinyConfig();
    hub["model_name"] = "EleutherAI/pythia-70m";
    hub["lr"] = json::array({1e-4, 3e-4});
    const auto named = sae::SweepExpansion::expand(hub);
    QCOMPARE(named[0].saeName,
             std::string("EleutherAI/pythia-70m_blocks.0.hook_mlp_out_32_lr_0.0001"));
    QCOMPARE(named[0].folderName,
             std::string("EleutherAI_pythia-70m_blocks.0.hook_mlp_out_32_lr_0.0001"));
  }

  void configWithoutListsIsOneRun() {
    const json object = tinyConfig();
    QVERIFY(!sae::SweepExpansion::isSweep(object));
    const auto combinations = sae::SweepExpansion::expand(object);
    QCOMPARE(combinations.size(), size_t(1));
    QCOMPARE(combinations[0].config.toJson(), sae::RunConfig::fromJson(object).toJson());
    QCOMPARE(combinations[0].saeName, std::string("tiny_blocks.0.hook_mlp_out_32_"));  // as SAELens
    QCOMPARE(combinations[0].metricSuffix, std::string());
  }

  void streamFieldsAreRefused() {
    for (const char* name :
         {"model_name", "hook_point", "hook_point_layer", "d_in", "dataset_path", "context_size",
          "train_batch_size", "store_batch_size", "n_batches_in_buffer", "training_tokens",
          "normalize_activations", "seed", "synthetic_seed", "use_synthetic_activations"}) {
      json object = tinyConfig();
      object[name] = json::array({object.value(name, json(1)), object.value(name, json(1))});
      const std::string what = errorOf([&] { sae::SweepExpansion::expand(object, "sweep.json"); });
      QVERIFY2(contains(what, "sweep.json") &&
                   contains(what, std::string(name) +
                                      ": cannot be a list: it defines the activation stream "
                                      "that every SAE of a sweep shares"),
               what.c_str());
    }
    // Whole-run settings: another reason, the allowed fields named.
    for (const char* name : {"n_checkpoints", "run_name", "wandb_log_frequency", "dtype"}) {
      json object = tinyConfig();
      object[name] = json::array({1, 2});
      const std::string what = errorOf([&] { sae::SweepExpansion::expand(object); });
      QVERIFY2(contains(what, std::string(name) + ": cannot be a list: it is a setting of the "
                                                  "whole sweep") &&
                   contains(what, "Lists are allowed for the SAE, loss, learning-rate"),
               what.c_str());
    }
    json dSae = tinyConfig();
    dSae["d_sae"] = json::array({32, 64});
    QVERIFY(contains(errorOf([&] { sae::SweepExpansion::expand(dSae); }),
                     "d_sae: cannot be a list: it is derived from d_in * expansion_factor; "
                     "sweep expansion_factor instead"));
    // Several problems are reported together.
    json two = tinyConfig();
    two["seed"] = json::array({1, 2});
    two["lr"] = json::array();
    const std::string both = errorOf([&] { sae::SweepExpansion::expand(two); });
    QVERIFY2(contains(both, "seed: cannot be a list") &&
                 contains(both, "lr: the list is empty, so the sweep has no SAE"),
             both.c_str());
  }

  void badCombinationsAreNamed() {
    json object = tinyConfig();
    object["lr"] = json::array({0, 1e-3});
    object["l1_coefficient"] = json::array({1, 2});
    const std::string what = errorOf([&] { sae::SweepExpansion::expand(object, "s.json"); });
    // Reported once although two combinations hold lr = 0.
    QVERIFY2(contains(what,
                      "lr: 0.0 is not allowed: must be greater than 0 [in "
                      "l1_coefficient=1, lr=0]"),
             what.c_str());
    QVERIFY2(what.find("lr: 0.0 is not allowed") == what.rfind("lr: 0.0 is not allowed"),
             what.c_str());

    json repeated = tinyConfig();
    repeated["lr"] = json::array({0.0001, 1e-4});
    const std::string same = errorOf([&] { sae::SweepExpansion::expand(repeated); });
    QVERIFY2(contains(same, "sweep combinations 0 and 1 get the same name") &&
                 contains(same, "a list repeats a value"),
             same.c_str());

    json dSae = tinyConfig();
    dSae["d_sae"] = 32;
    dSae["expansion_factor"] = json::array({2, 4});
    QVERIFY(contains(errorOf([&] { sae::SweepExpansion::expand(dSae); }),
                     "d_sae: leave it out (or null) when expansion_factor is a list"));

    json unknown = tinyConfig();
    unknown["l1_coeficient"] = json::array({1, 2});
    QVERIFY(contains(errorOf([&] { sae::SweepExpansion::expand(unknown); }),
                     "unknown field 'l1_coeficient'; did you mean 'l1_coefficient'?"));

    // One run (the GUI form, RunConfig::fromJson) still takes one value, and says where lists go.
    const std::string single = errorOf([] { sae::RunConfig::fromJson({{"lr", {1e-4, 1e-3}}}); });
    QVERIFY2(contains(single,
                      "lr: a list of values is a sweep (one SAE per combination): train "
                      "the file with sae-train --config FILE"),
             single.c_str());
  }

  void overridesMakeAndReplaceSweeps() {
    json object = tinyConfig();
    sae::SweepExpansion::applyOverride(object, "l1_coefficient=[1, 2, 3]");
    QCOMPARE(sae::SweepExpansion::expand(object).size(), size_t(3));
    sae::SweepExpansion::applyOverride(object, "l1_coefficient=4");
    QVERIFY(!sae::SweepExpansion::isSweep(object));
    QCOMPARE(sae::SweepExpansion::expand(object)[0].config.l1_coefficient, 4.0);
    // d_sae follows expansion_factor again.
    object["d_sae"] = 32;
    sae::SweepExpansion::applyOverride(object, "expansion_factor=[2, 4]");
    QCOMPARE(sae::SweepExpansion::expand(object)[1].config.d_sae, std::optional<int64_t>(64));
    QVERIFY(contains(errorOf([&] { sae::SweepExpansion::applyOverride(object, "lrr=1"); }),
                     "unknown field 'lrr'"));
    QVERIFY(contains(errorOf([&] { sae::SweepExpansion::applyOverride(object, "d_in=abc"); }),
                     "d_in: expected an integer"));
  }

  void schemaAndOrderAgree() {
    const auto& order = sae::SweepExpansion::sweepOrder();
    size_t sweepable = 0;
    for (const auto& field : sae::ConfigSchema::fields()) {
      const bool listed = std::find(order.begin(), order.end(), field.name) != order.end();
      QVERIFY2(listed == field.sweepable, field.name.c_str());
      sweepable += field.sweepable ? 1 : 0;
    }
    QCOMPARE(sweepable, order.size());
  }

  // The check of issue 5 §5: every SAE of a 2x2 sweep gets the same batches as a single run of
  // its combination and ends with the same weights, bit for bit; checkpoints too.
  void sweepEqualsSingleRuns() {
    QTemporaryDir dir;
    json object = tinyConfig();
    object["l1_coefficient"] = json::array({0.5, 2});
    object["lr"] = json::array({1e-3, 3e-3});
    auto combinations = sae::SweepExpansion::expand(object);
    const fs::path sweepDir = fs::path(dir.path().toStdString()) / "sweep";
    sae::SweepRun sweep(combinations, sweepDir.string(), object);
    for (size_t k = 0; k < 4; ++k)
      QVERIFY2(sweep.matchesSingleRun(k), sweep.singleRunNote(k).c_str());
    QVERIFY(sweep.run());
    QCOMPARE(sweep.step(), int64_t(20));

    for (size_t k = 0; k < combinations.size(); ++k) {
      const fs::path single = fs::path(dir.path().toStdString()) / ("single" + std::to_string(k));
      sae::TrainingRun run(combinations[k].config, single.string());
      QVERIFY(run.run());
      const fs::path swept = sweepDir / combinations[k].folderName;
      compareTensorFiles(swept / "final" / "sae_weights.safetensors",
                         single / "final" / "sae_weights.safetensors");
      compareTensorFiles(swept / "final" / "sparsity.safetensors",
                         single / "final" / "sparsity.safetensors");
      // n_checkpoints = 2: one threshold checkpoint at 640 tokens, passed after step 11.
      compareTensorFiles(swept / "checkpoints" / "704" / "sae_weights.safetensors",
                         single / "checkpoints" / "704" / "sae_weights.safetensors");
      // The logged metrics agree too (wall time aside).
      std::ifstream a(swept / "metrics.jsonl"), b(single / "metrics.jsonl");
      std::string lineA, lineB;
      int lines = 0;
      while (std::getline(a, lineA)) {
        QVERIFY(std::getline(b, lineB));
        json ja = json::parse(lineA), jb = json::parse(lineB);
        ja.erase("wall_seconds");
        jb.erase("wall_seconds");
        QCOMPARE(QString::fromStdString(ja.dump()), QString::fromStdString(jb.dump()));
        ++lines;
      }
      QVERIFY(!std::getline(b, lineB));
      QCOMPARE(lines, 20);
    }
    // Different coefficients really trained different SAEs.
    const auto w0 = sae::Safetensors::read(
        (sweepDir / combinations[0].folderName / "final" / "sae_weights.safetensors").string());
    const auto w3 = sae::Safetensors::read(
        (sweepDir / combinations[3].folderName / "final" / "sae_weights.safetensors").string());
    QVERIFY(!torch::equal(w0[0].second, w3[0].second));
  }

  // Each SAE starts from its single run's initial weights even when d_sae differs; the shared
  // batches then follow the first combination's draws, which sweep.json says.
  void expansionSweepNotes() {
    QTemporaryDir dir;
    json object = tinyConfig();
    object["expansion_factor"] = json::array({2, 4});
    object["n_checkpoints"] = 0;
    auto combinations = sae::SweepExpansion::expand(object);
    const fs::path sweepDir = fs::path(dir.path().toStdString()) / "sweep";
    sae::SweepRun sweep(combinations, sweepDir.string(), object);
    QVERIFY(sweep.matchesSingleRun(0));
    QVERIFY(!sweep.matchesSingleRun(1));
    QVERIFY2(contains(sweep.singleRunNote(1), "different number of random values"),
             sweep.singleRunNote(1).c_str());
    const json manifest = readJson(sweepDir / "sweep.json");
    QCOMPARE(manifest["combinations"][1]["matches_single_run"], json(false));
    QVERIFY(sweep.run());
    const fs::path single = fs::path(dir.path().toStdString()) / "single0";
    sae::TrainingRun run(combinations[0].config, single.string());
    QVERIFY(run.run());
    compareTensorFiles(sweepDir / combinations[0].folderName / "final" / "sae_weights.safetensors",
                       single / "final" / "sae_weights.safetensors");
  }

  void folderLayout() {
    QTemporaryDir dir;
    json object = tinyConfig();
    object["l1_coefficient"] = json::array({0.5, 2});
    object["training_tokens"] = 64 * 8;
    const auto combinations = sae::SweepExpansion::expand(object);
    const fs::path sweepDir = fs::path(dir.path().toStdString()) / "sweep";
    {
      sae::SweepRun sweep(combinations, sweepDir.string(), object);
      QVERIFY(sweep.run());
    }
    const json manifest = readJson(sweepDir / "sweep.json");
    QCOMPARE(manifest["format"], json("sae-workbench sweep 1"));
    QCOMPARE(manifest["swept_fields"], json::array({"l1_coefficient"}));
    QCOMPARE(manifest["config"]["l1_coefficient"], json::array({0.5, 2}));
    QCOMPARE(manifest["combinations"].size(), size_t(2));
    for (size_t k = 0; k < 2; ++k) {
      const json& entry = manifest["combinations"][k];
      QCOMPARE(entry["sae_name"], json(combinations[k].saeName));
      QCOMPARE(entry["folder"], json(combinations[k].folderName));
      QCOMPARE(entry["metric_suffix"], json(k == 0 ? "_coeff0.5" : "_coeff2"));
      QCOMPARE(entry["values"]["l1_coefficient"], object["l1_coefficient"][k]);
      QCOMPARE(entry["matches_single_run"], json(true));

      const fs::path run = sweepDir / combinations[k].folderName;
      // config.json holds this SAE's single value: the folder is an ordinary run folder.
      const sae::RunConfig saved = sae::RunConfig::loadFile((run / "config.json").string());
      QCOMPARE(saved.l1_coefficient, k == 0 ? 0.5 : 2.0);
      QCOMPARE(saved.toJson(), combinations[k].config.toJson());
      const auto status = sae::RunManifest::load((run / "run.json").string());
      QCOMPARE(QString::fromStdString(status.status), QStringLiteral("finished"));
      QCOMPARE(status.tokens_done, int64_t(64 * 8));
      QVERIFY(fs::exists(run / "final" / "sae_weights.safetensors"));
      QVERIFY(fs::exists(run / "final" / "cfg.json"));
      QVERIFY(fs::exists(run / "checkpoints" / "320" / sae::Trainer::kStateFile));
      int lines = 0;
      std::ifstream metrics(run / "metrics.jsonl");
      for (std::string line; std::getline(metrics, line);)
        ++lines;
      QCOMPARE(lines, 8);
      int events = 0;
      for (const auto& entry : fs::directory_iterator(run))
        if (entry.path().filename().string().rfind("events.out.tfevents.", 0) == 0) ++events;
      QCOMPARE(events, 1);
    }
  }

  // A stop writes a checkpoint of every SAE; one SAE's folder then continues alone as a single
  // run and ends as the uninterrupted single run does.
  void stoppedSweepContinuesPerSae() {
    QTemporaryDir dir;
    json object = tinyConfig();
    object["l1_coefficient"] = json::array({0.5, 2});
    object["n_checkpoints"] = 0;
    const auto combinations = sae::SweepExpansion::expand(object);
    const fs::path sweepDir = fs::path(dir.path().toStdString()) / "sweep";
    {
      sae::SweepRun sweep(combinations, sweepDir.string(), object);
      StopSweepAfter stopper(sweep, 9);
      sweep.addObserver(&stopper);
      QVERIFY(!sweep.run());
      QCOMPARE(sweep.step(), int64_t(9));
    }
    QVERIFY(sae::SweepRun::isSweepFolder(sweepDir.string()));
    for (size_t k = 0; k < 2; ++k) {
      const fs::path run = sweepDir / combinations[k].folderName;
      QVERIFY(fs::exists(run / "checkpoints" / "576" / sae::Trainer::kStateFile));
      QVERIFY(!fs::exists(run / "checkpoints" / "576" / ".training_state.pending"));
      QCOMPARE(QString::fromStdString(sae::RunManifest::load((run / "run.json").string()).status),
               QStringLiteral("stopped"));
    }
    const fs::path run1 = sweepDir / combinations[1].folderName;
    auto resumed = sae::TrainingRun::resume(run1.string());
    QVERIFY(resumed->run());
    const fs::path single = fs::path(dir.path().toStdString()) / "single1";
    sae::TrainingRun uninterrupted(combinations[1].config, single.string());
    QVERIFY(uninterrupted.run());
    compareTensorFiles(run1 / "final" / "sae_weights.safetensors",
                       single / "final" / "sae_weights.safetensors");
  }
};

QTEST_GUILESS_MAIN(TestSweep)
#include "tst_sweep.moc"
