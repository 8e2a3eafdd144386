// Issue 5 §4: the SAE folders SaeFolder writes (final/ and checkpoints) load with SAELens 5.9+
// and 6.x (SAE.load_from_disk): cfg.json has every key each version reads, in the shape it
// reads it, and a run that normalised its activations saves weights with the factor folded in,
// so the saved SAE takes the activations the model produces.
//
// tests/fixtures/sae/saelens_folded/ is a folder this suite writes (SAEWB_WRITE_SAELENS_FIXTURE=1
// rewrites it); tests/reference/saelens_load_reference.py loads it the way SAELens 5.x and 6.x
// do and writes forward_reference.json, the SAE's output on raw activations, which is compared
// here with the unfolded SAE's output on the scaled activations.
#include <QTemporaryDir>
#include <QtTest>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <torch/torch.h>
#include <nlohmann/json.hpp>

#include "config/RunConfig.h"
#include "data/ActivationStore.h"
#include "data/SyntheticActivationSource.h"
#include "formats/Safetensors.h"
#include "sae/Sae.h"
#include "sae/SaeFolder.h"
#include "support/JsonFixtures.h"
#include "support/TensorCompare.h"
#include "support/TestText.h"
#include "train/Trainer.h"

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

const std::string kFixtureDir = std::string(SAEWB_FIXTURES_DIR) + "/sae/saelens_folded";
// Not a power of two, so folding rounds (as a real sqrt(d_in) / mean norm would).
constexpr double kScale = 2.6;

// The keys SAELens 5.x's SAEConfig declares without a default (sae_lens/sae.py, 5.x; after
// handle_config_defaulting fills prepend_bos, dataset_trust_remote_code, apply_b_dec_to_input,
// finetuning_scaling_factor, sae_lens_training_version, activation_fn_str, architecture,
// normalize_activations and device when missing, and from_dict renames hook_point,
// hook_point_layer, hook_point_head_index and activation_fn). We write them all ourselves.
// The same list is in tests/reference/saelens_load_reference.py.
struct Key {
  const char* name;
  json::value_t type;
  bool nullable;
};
const std::vector<Key> kSaeLens5Keys = {
    {"architecture", json::value_t::string, false},
    {"d_in", json::value_t::number_integer, false},
    {"d_sae", json::value_t::number_integer, false},
    {"activation_fn_str", json::value_t::string, false},
    {"apply_b_dec_to_input", json::value_t::boolean, false},
    {"finetuning_scaling_factor", json::value_t::boolean, false},
    {"context_size", json::value_t::number_integer, false},
    {"model_name", json::value_t::string, false},
    {"hook_name", json::value_t::string, false},
    {"hook_layer", json::value_t::number_integer, false},
    {"hook_head_index", json::value_t::number_integer, true},
    {"prepend_bos", json::value_t::boolean, false},
    {"dataset_path", json::value_t::string, false},
    {"dataset_trust_remote_code", json::value_t::boolean, false},
    {"normalize_activations", json::value_t::string, false},
    {"dtype", json::value_t::string, false},
    {"device", json::value_t::string, false},
    {"sae_lens_training_version", json::value_t::string, true},
    {"activation_fn_kwargs", json::value_t::object, false},
    {"model_from_pretrained_kwargs", json::value_t::object, false},
};
// 6.x: StandardSAEConfig's fields (sae_lens/saes/sae.py SAEConfig; other top-level keys are
// dropped by filter_valid_dataclass_fields) and the metadata keys (LLM_METADATA_KEYS in
// sae_lens/loading/pretrained_sae_loaders.py) we fill.
const std::vector<Key> kSaeLens6Keys = {
    {"architecture", json::value_t::string, false},
    {"d_in", json::value_t::number_integer, false},
    {"d_sae", json::value_t::number_integer, false},
    {"dtype", json::value_t::string, false},
    {"device", json::value_t::string, false},
    {"apply_b_dec_to_input", json::value_t::boolean, false},
    {"normalize_activations", json::value_t::string, false},
    {"reshape_activations", json::value_t::string, false},
    {"metadata", json::value_t::object, false},
};
const std::vector<Key> kSaeLens6MetadataKeys = {
    {"sae_lens_version", json::value_t::string, false},
    {"sae_lens_training_version", json::value_t::string, false},
    {"model_name", json::value_t::string, false},
    {"model_class_name", json::value_t::string, false},
    {"hook_name", json::value_t::string, false},
    {"hook_head_index", json::value_t::number_integer, true},
    {"context_size", json::value_t::number_integer, false},
    {"prepend_bos", json::value_t::boolean, false},
    {"dataset_path", json::value_t::string, false},
    {"model_from_pretrained_kwargs", json::value_t::object, false},
};

// Empty when every key is there with its type; else the first that is not.
std::string missingKey(const json& object, const std::vector<Key>& keys, const std::string& where) {
  for (const auto& key : keys) {
    const auto it = object.find(key.name);
    if (it == object.end()) return where + key.name + " is missing";
    if (key.nullable && it->is_null()) continue;
    const bool integerOk =
        key.type == json::value_t::number_integer && (it->type() == json::value_t::number_unsigned);
    if (it->type() != key.type && !integerOk)
      return where + key.name + " has the wrong type: " + it->dump();
  }
  return {};
}

sae::RunConfig fixtureConfig(bool applyBDec = true, const std::string& activation = "relu") {
  sae::RunConfig c;
  c.model_name = "gelu-1l";
  c.hook_point = "blocks.{layer}.hook_resid_pre";
  c.hook_point_layer = 1;
  c.dataset_path = "NeelNanda/c4-code-tokenized-2b";
  c.context_size = 16;
  c.d_in = 8;
  c.expansion_factor = 4;
  c.d_sae = c.derivedDSae();
  c.activation_fn = activation;
  c.apply_b_dec_to_input = applyBDec;
  c.normalize_activations = true;
  c.dtype = "torch.float32";
  return c;
}

// A trained-looking SAE: seeded kaiming weights, non-zero biases.
std::shared_ptr<sae::Sae> fixtureSae(const sae::RunConfig& config) {
  torch::manual_seed(20240501);
  auto sae = std::make_shared<sae::Sae>(sae::SaeOptions::fromConfig(config));
  torch::NoGradGuard noGrad;
  sae->b_enc.copy_(torch::randn({sae->b_enc.size(0)}) * 0.2);
  sae->b_dec.copy_(torch::randn({sae->b_dec.size(0)}));
  return sae;
}

torch::Tensor fixtureSparsity(int64_t dSae) {
  return torch::linspace(-6.0, -0.5, dSae, torch::kFloat32);
}

std::map<std::string, torch::Tensor> readWeights(const std::string& folder) {
  const auto tensors = sae::Safetensors::read(folder + "/sae_weights.safetensors");
  return {tensors.begin(), tensors.end()};
}

json readJsonFile(const std::string& path) {
  return json::parse(saetest::readText(path));
}

}  // namespace

class TestSaeFolderSaeLens : public QObject {
  Q_OBJECT

 private Q_SLOTS:
  void initTestCase() {
    if (std::getenv("SAEWB_WRITE_SAELENS_FIXTURE")) {
      const auto config = fixtureConfig();
      sae::SaeFolder::save(kFixtureDir, *fixtureSae(config), config,
                           fixtureSparsity(config.derivedDSae()), kScale);
      qInfo("wrote %s; now run /usr/bin/python3 tests/reference/saelens_load_reference.py",
            kFixtureDir.c_str());
    }
  }

  // The committed fixture is what this code writes today, byte for byte (cfg.json) and bit for
  // bit (weights): the Python check of the fixture is a check of the current writer.
  void fixtureIsWhatTheWriterWrites() {
    QTemporaryDir dir;
    QVERIFY(dir.isValid());
    const std::string out = dir.path().toStdString();
    const auto config = fixtureConfig();
    sae::SaeFolder::save(out, *fixtureSae(config), config, fixtureSparsity(config.derivedDSae()),
                         kScale);
    QVERIFY2(saetest::readText(out + "/cfg.json") == saetest::readText(kFixtureDir + "/cfg.json"),
             "cfg.json differs from tests/fixtures/sae/saelens_folded/cfg.json; rerun with "
             "SAEWB_WRITE_SAELENS_FIXTURE=1 and the reference script if the change is meant");
    const auto written = readWeights(out), fixture = readWeights(kFixtureDir);
    QCOMPARE(written.size(), fixture.size());
    for (const auto& [name, tensor] : written)
      QVERIFY2(torch::equal(tensor, fixture.at(name)), name.c_str());
  }

  // Every key SAELens 5.x's SAEConfig needs, with its type; the values a 5.x loader ends up
  // with (after from_dict's renames, where the later key in the file wins) are the right ones.
  void cfgJsonHasWhatSaeLens5Reads() {
    QTemporaryDir dir;
    const std::string out = dir.path().toStdString();
    const auto config = fixtureConfig();
    sae::SaeFolder::save(out, *fixtureSae(config), config, {}, kScale);
    const json cfg = readJsonFile(out + "/cfg.json");
    const std::string problem = missingKey(cfg, kSaeLens5Keys, "cfg.json: ");
    QVERIFY2(problem.empty(), problem.c_str());
    QCOMPARE(cfg["architecture"].get<std::string>(), std::string("standard"));
    QCOMPARE(cfg["d_in"].get<int64_t>(), int64_t(8));
    QCOMPARE(cfg["d_sae"].get<int64_t>(), int64_t(32));
    QCOMPARE(cfg["hook_name"].get<std::string>(), std::string("blocks.1.hook_resid_pre"));
    // from_dict renames hook_point to hook_name: both must hold the resolved hook.
    QCOMPARE(cfg["hook_point"].get<std::string>(), std::string("blocks.1.hook_resid_pre"));
    QCOMPARE(cfg["hook_layer"].get<int64_t>(), int64_t(1));
    QCOMPARE(cfg["hook_point_layer"].get<int64_t>(), int64_t(1));
    QVERIFY(cfg["hook_head_index"].is_null() && cfg["hook_point_head_index"].is_null());
    QCOMPARE(cfg["activation_fn_str"].get<std::string>(), std::string("relu"));
    QCOMPARE(cfg["activation_fn"].get<std::string>(), std::string("relu"));
    QCOMPARE(cfg["dtype"].get<std::string>(), std::string("float32"));
    QCOMPARE(cfg["normalize_activations"].get<std::string>(), std::string("none"));
    QCOMPARE(cfg["finetuning_scaling_factor"].get<bool>(), false);
    QCOMPARE(cfg["activation_norm_scaling_factor_folded"].get<double>(), kScale);
    // The SAELens 1.5 keys the trainer writes stay.
    for (const char* key : {"run_name", "tokens_per_buffer", "l1_coefficient", "lr",
                            "expansion_factor", "b_dec_init_method", "sae_lens_training_version"})
      QVERIFY2(cfg.contains(key), key);
  }

  // 6.x reads metadata.sae_lens_version (no top-level sae_lens_version may shadow it) and
  // takes its native path for >= 6.0.0-rc.0; the SAEConfig fields hold values it accepts.
  void cfgJsonHasWhatSaeLens6Reads() {
    QTemporaryDir dir;
    const std::string out = dir.path().toStdString();
    const auto config = fixtureConfig();
    sae::SaeFolder::save(out, *fixtureSae(config), config, {}, kScale);
    const json cfg = readJsonFile(out + "/cfg.json");
    std::string problem = missingKey(cfg, kSaeLens6Keys, "cfg.json: ");
    QVERIFY2(problem.empty(), problem.c_str());
    problem = missingKey(cfg["metadata"], kSaeLens6MetadataKeys, "cfg.json metadata: ");
    QVERIFY2(problem.empty(), problem.c_str());
    QVERIFY(!cfg.contains("sae_lens_version"));
    const json& meta = cfg["metadata"];
    QCOMPARE(meta["sae_lens_version"].get<std::string>(), std::string("6.0.0"));
    QCOMPARE(meta["sae_lens_training_version"].get<std::string>(), std::string("1.5.0"));
    QCOMPARE(meta["hook_name"].get<std::string>(), std::string("blocks.1.hook_resid_pre"));
    QCOMPARE(meta["model_name"].get<std::string>(), std::string("gelu-1l"));
    QCOMPARE(meta["context_size"].get<int64_t>(), int64_t(16));
    QCOMPARE(meta["dataset_path"].get<std::string>(),
             std::string("NeelNanda/c4-code-tokenized-2b"));
    QCOMPARE(cfg["reshape_activations"].get<std::string>(), std::string("none"));
    const auto norm = cfg["normalize_activations"].get<std::string>();
    QVERIFY(norm == "none" || norm == "expected_average_only_in" ||
            norm == "constant_norm_rescale" || norm == "layer_norm");
  }

  // Folding: the saved SAE on raw x has the features of the trained SAE on s x and outputs
  // its reconstruction divided by s; for both apply_b_dec_to_input values and activations.
  void foldedSaeWorksOnRawActivations() {
    for (const bool applyBDec : {true, false}) {
      for (const std::string activation : {"relu", "tanh-relu"}) {
        const auto config = fixtureConfig(applyBDec, activation);
        const auto trained = fixtureSae(config);
        sae::Sae saved(sae::SaeOptions::fromConfig(config));
        saved.loadTensors(sae::SaeFolder::foldedWeights(*trained, kScale), "folded");
        torch::manual_seed(7);
        const auto raw = torch::randn({64, 8}) * 3.0 + 0.5;
        const auto onScaled = trained->forward(raw * kScale, 0.0, {}, /*training=*/false);
        const auto onRaw = saved.forward(raw, 0.0, {}, /*training=*/false);
        const std::string what =
            activation + (applyBDec ? ", apply_b_dec_to_input" : ", no b_dec on input");
        QVERIFY(onScaled.feature_acts.gt(0).any().item<bool>());
        std::string diff = saetest::compareTensors(what + " features", onRaw.feature_acts,
                                                   onScaled.feature_acts, 1e-6, 1e-5);
        QVERIFY2(diff.empty(), diff.c_str());
        diff = saetest::compareTensors(what + " output", onRaw.sae_out, onScaled.sae_out / kScale,
                                       1e-6, 1e-5);
        QVERIFY2(diff.empty(), diff.c_str());
      }
    }
  }

  // The reference script loaded the fixture as SAELens would and ran it on raw activations;
  // the trained (unfolded) SAE on the scaled activations gives the same, divided by s.
  void matchesSaeLensReferenceForward() {
    json reference;
    try {
      reference = saetest::loadFixture("sae/saelens_folded/forward_reference.json");
    } catch (const std::exception& e) {
      QFAIL((std::string(e.what()) +
             "; run /usr/bin/python3 tests/reference/saelens_load_reference.py")
                .c_str());
    }
    QCOMPARE(reference["scale"].get<double>(), kScale);
    for (const std::string loader : {"saelens_5", "saelens_6", "saelens_6_pre6_conversion"})
      QVERIFY2(reference["loaded_by"].contains(loader), loader.c_str());
    const auto config = fixtureConfig();
    const auto trained = fixtureSae(config);
    const auto raw = saetest::tensorFromJson(reference["x"]);
    const auto out = trained->forward(raw * kScale, 0.0, {}, /*training=*/false);
    std::string diff =
        saetest::compareTensors("features", out.feature_acts,
                                saetest::tensorFromJson(reference["feature_acts"]), 1e-6, 1e-5);
    QVERIFY2(diff.empty(), diff.c_str());
    diff = saetest::compareTensors("sae_out", out.sae_out / kScale,
                                   saetest::tensorFromJson(reference["sae_out"]), 1e-6, 1e-5);
    QVERIFY2(diff.empty(), diff.c_str());
  }

  // No factor (or 1): the weights are saved as they are; normalize_activations is "none" either
  // way (a store that never normalised, e.g. over cached activations, reports no factor).
  void withoutScaleNothingIsFolded() {
    for (const std::optional<double> scale :
         {std::optional<double>(), std::optional<double>(1.0)}) {
      QTemporaryDir dir;
      const std::string out = dir.path().toStdString();
      const auto config = fixtureConfig();
      const auto sae = fixtureSae(config);
      sae::SaeFolder::save(out, *sae, config, {}, scale);
      const auto weights = readWeights(out);
      QCOMPARE(weights.size(), size_t(4));  // scaling_factor (all ones) is left out
      QVERIFY(torch::equal(weights.at("W_enc"), sae->W_enc.detach()));
      QVERIFY(torch::equal(weights.at("W_dec"), sae->W_dec.detach()));
      QVERIFY(torch::equal(weights.at("b_dec"), sae->b_dec.detach()));
      QVERIFY(torch::equal(weights.at("b_enc"), sae->b_enc.detach()));
      const json cfg = readJsonFile(out + "/cfg.json");
      QCOMPARE(cfg["normalize_activations"].get<std::string>(), std::string("none"));
      QCOMPARE(cfg.contains("activation_norm_scaling_factor_folded"), bool(scale));
    }
    auto plain = fixtureConfig();
    plain.normalize_activations = false;
    const json cfg = sae::SaeFolder::configJson(plain);
    QCOMPARE(cfg["normalize_activations"].get<std::string>(), std::string("none"));
  }

  // A saved scaling_factor other than ones is declared, as SAELens then requires.
  void nonUnitScalingFactorIsDeclared() {
    QTemporaryDir dir;
    const std::string out = dir.path().toStdString();
    const auto config = fixtureConfig();
    const auto sae = fixtureSae(config);
    {
      torch::NoGradGuard noGrad;
      sae->scaling_factor.fill_(0.5);
    }
    sae::SaeFolder::save(out, *sae, config, {}, kScale);
    QCOMPARE(readWeights(out).size(), size_t(5));
    QCOMPARE(readJsonFile(out + "/cfg.json")["finetuning_scaling_factor"].get<bool>(), true);
  }

  // from_pretrained_path on a folded folder gives back the weights in the space the run
  // trained in (what SAELens 1.5 would have saved); a folder without the key loads as is.
  void loadWeightsUnfolds() {
    QTemporaryDir dir;
    const std::string out = dir.path().toStdString();
    const auto config = fixtureConfig();
    const auto trained = fixtureSae(config);
    sae::SaeFolder::save(out, *trained, config, {}, kScale);
    sae::Sae loaded(sae::SaeOptions::fromConfig(config));
    sae::SaeFolder::loadWeights(out, loaded);
    const auto loadedTensors = loaded.namedTensors();
    for (const auto& [name, tensor] : trained->namedTensors()) {
      const auto other = std::find_if(loadedTensors.begin(), loadedTensors.end(),
                                      [&](const auto& t) { return t.first == name; });
      const std::string diff =
          saetest::compareTensors(name, other->second, tensor.detach(), 1e-7, 1e-6);
      QVERIFY2(diff.empty(), diff.c_str());
    }
    // Bad factor: a clear message naming the file and key.
    json cfg = readJsonFile(out + "/cfg.json");
    cfg["activation_norm_scaling_factor_folded"] = "two";
    saetest::writeText(out + "/cfg.json", cfg.dump());
    try {
      sae::SaeFolder::loadWeights(out, loaded);
      QFAIL("a non-numeric factor was accepted");
    } catch (const std::runtime_error& e) {
      QVERIFY2(
          std::string(e.what()).find("activation_norm_scaling_factor_folded") != std::string::npos,
          e.what());
    }
  }

  // The trainer passes its store's factor: a run with normalize_activations saves the SAE with
  // exactly that factor folded in and recorded.
  void trainerFoldsItsStoreFactor() {
    auto config = fixtureConfig();
    config.model_name = "";
    config.dataset_path = "";
    config.use_synthetic_activations = true;
    config.synthetic_n_features = 24;
    config.synthetic_feature_probability = 0.1;
    config.store_batch_size = 4;
    config.n_batches_in_buffer = 4;
    config.train_batch_size = 32;
    config.training_tokens = 32 * 4;
    config.b_dec_init_method = "mean";
    config.num_threads = 1;
    sae::SyntheticOptions so;
    so.d_in = config.d_in;
    so.n_features = config.synthetic_n_features;
    so.feature_probability = config.synthetic_feature_probability;
    auto store =
        std::make_shared<sae::ActivationStore>(std::make_shared<sae::SyntheticActivationSource>(so),
                                               sae::ActivationStoreOptions::fromConfig(config));
    torch::manual_seed(3);
    auto sae = sae::Trainer::makeSae(config);
    sae::Trainer trainer(config, store, sae, "");
    for (int i = 0; i < 3; ++i)
      trainer.trainStep();
    const auto factor = store->estimatedNormScalingFactor();
    QVERIFY(factor && *factor != 1.0);
    QTemporaryDir dir;
    const std::string out = dir.path().toStdString();
    trainer.saveSae(out);
    const json cfg = readJsonFile(out + "/cfg.json");
    QCOMPARE(cfg["activation_norm_scaling_factor_folded"].get<double>(), *factor);
    QCOMPARE(cfg["normalize_activations"].get<std::string>(), std::string("none"));
    const auto weights = readWeights(out);
    for (const auto& [name, tensor] : sae::SaeFolder::foldedWeights(trainer.sae(), factor)) {
      if (name == "scaling_factor") continue;
      QVERIFY2(torch::equal(weights.at(name), tensor), name.c_str());
    }
    QVERIFY(!torch::equal(weights.at("W_enc"), trainer.sae().W_enc.detach()));
  }
};

QTEST_APPLESS_MAIN(TestSaeFolderSaeLens)
#include "tst_sae_folder_saelens.moc"
