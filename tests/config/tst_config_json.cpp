// RunConfig <-> JSON: the schema covers every member, round trips keep every field, and bad
// input (unknown keys, wrong types, sweeps, broken files) produces messages that say what and
// where. Also command-line overrides and relative path resolution.
#include <QTemporaryDir>
#include <QtTest>

#include <filesystem>
#include <regex>
#include <set>

#include <nlohmann/json.hpp>

#include "config/ConfigError.h"
#include "config/ConfigSchema.h"
#include "config/RunConfig.h"
#include "support/QtTestStrings.h"
#include "support/TestText.h"

using sae::ConfigError;
using sae::ConfigField;
using sae::ConfigSchema;
using sae::RunConfig;
using saetest::contains;
using saetest::readText;
using saetest::writeText;
using json = nlohmann::json;
namespace fs = std::filesystem;

namespace {

// The message of the ConfigError that fn throws, or "" when it does not throw.
template <typename Fn>
std::string errorOf(Fn fn) {
  try {
    fn();
  } catch (const ConfigError& error) {
    return error.what();
  }
  return "";
}

// A valid config in which every field differs from its default where validation allows it.
json nonDefaultObject() {
  return {
      {"model_name", "gelu-1l"},
      {"hook_point", "blocks.{layer}.hook_resid_pre"},
      {"hook_point_layer", 1},
      {"d_in", 256},
      {"model_class_name", "HookedTransformer"},
      {"hook_point_head_index", 3},
      {"hook_point_eval", "blocks.1.attn.pattern"},
      {"dataset_path", "/data/tokens.npy"},
      {"context_size", 64},
      {"is_dataset_tokenized", false},
      {"prepend_bos", false},
      {"token_file_dtype", "uint32"},
      {"training_tokens", 4096000},
      {"train_batch_size", 2048},
      {"finetuning_tokens", 20480},
      {"streaming", false},
      {"use_cached_activations", false},
      {"cached_activations_path", "/cache/acts"},
      {"expansion_factor", 16},
      {"d_sae", 4096},
      {"activation_fn", "tanh-relu"},
      {"from_pretrained_path", "/saes/start"},
      {"mse_loss_normalization", "dense_batch"},
      {"l1_coefficient", 0.0075},
      {"lp_norm", 0.5},
      {"scale_sparsity_penalty_by_decoder_norm", true},
      {"l1_warm_up_steps", 100},
      {"lr_scheduler_name", "cosineannealingwarmrestarts"},
      {"lr_warm_up_steps", 50},
      {"lr_decay_steps", 200},
      {"lr", 1.5e-4},
      {"lr_end", 1e-6},
      {"n_restart_cycles", 3},
      {"apply_b_dec_to_input", false},
      {"b_dec_init_method", "mean"},
      {"normalize_sae_decoder", false},
      {"decoder_heuristic_init", true},
      {"init_encoder_as_decoder_transpose", true},
      {"decoder_orthogonal_init", true},
      {"adam_beta1", 0.9},
      {"adam_beta2", 0.99},
      {"n_batches_in_buffer", 8},
      {"store_batch_size", 4},
      {"normalize_activations", true},
      {"use_ghost_grads", true},
      {"feature_sampling_window", 300},
      {"dead_feature_window", 400},
      {"dead_feature_threshold", 1e-5},
      {"log_to_wandb", false},
      {"wandb_project", "proj"},
      {"wandb_log_frequency", 5},
      {"eval_every_n_wandb_logs", 7},
      {"n_eval_batches", 3},
      {"eval_batch_size_prompts", 2},
      {"run_name", "my-run"},
      {"wandb_id", "abc123"},
      {"wandb_entity", "me"},
      {"log_activations_store_to_wandb", true},
      {"log_optimizer_state_to_wandb", true},
      {"device", "cuda:1"},
      {"seed", 7},
      {"n_checkpoints", 3},
      {"checkpoint_path", "ckpts"},
      {"dtype", "torch.float64"},
      {"num_threads", 2},
      {"verbose", false},
      {"resume", true},
      {"use_synthetic_activations", false},
      {"synthetic_n_features", 99},
      {"synthetic_feature_probability", 0.25},
      {"synthetic_noise_std", 0.125},
      {"synthetic_seed", 11},
      {"finetuning_method", "scale"},
      {"noise_scale", 0.01},
      {"model_kwargs", {{"a", 1}}},
      {"model_from_pretrained_kwargs", {{"center_writing_weights", false}}},
      {"autocast", true},
      {"compile_llm", true},
      {"llm_compilation_mode", "max-autotune"},
      {"compile_sae", true},
      {"sae_compilation_mode", "reduce-overhead"},
      {"sae_lens_version", "1.5.1"},
      {"sae_lens_training_version", "1.5.1"},
  };
}

void compareEveryField(const RunConfig& a, const RunConfig& b) {
  for (const auto& field : ConfigSchema::fields()) {
    QVERIFY2(field.get(a) == field.get(b),
             (field.name + ": " + field.get(a).dump() + " vs " + field.get(b).dump()).c_str());
  }
}

}  // namespace

class TestConfigJson : public QObject {
  Q_OBJECT

 private Q_SLOTS:
  // Every member declared in RunConfig.h has exactly one schema line (parsed from the header
  // so that a new member without a field fails here).
  void schemaCoversEveryMember() {
    const std::string header = readText(SAEWB_SOURCE_DIR "/core/config/RunConfig.h");
    const size_t begin = header.find("struct RunConfig {");
    const size_t end = header.find("loading & saving");
    QVERIFY(begin != std::string::npos && end != std::string::npos);
    const std::string body = header.substr(begin, end - begin);
    const std::regex member(
        R"(\n\s+(?:bool|int64_t|double|std::string|std::optional<[\w:]+>|nlohmann::json)\s+(\w+)\s*[=;])");
    std::set<std::string> members;
    for (auto it = std::sregex_iterator(body.begin(), body.end(), member);
         it != std::sregex_iterator(); ++it) {
      members.insert((*it)[1]);
    }
    QCOMPARE(members.size(), size_t(83));
    std::set<std::string> names;
    for (const auto& field : ConfigSchema::fields()) {
      QVERIFY2(names.insert(field.name).second, ("duplicate field " + field.name).c_str());
      QVERIFY2(!field.help.empty(), (field.name + " has no help").c_str());
      QVERIFY2(field.help.find('\n') == std::string::npos, field.name.c_str());
    }
    QCOMPARE(names, members);
    // Each field writes its own member: setting one changes only that field.
    const json object = nonDefaultObject();
    for (const auto& field : ConfigSchema::fields()) {
      RunConfig config;
      field.set(config, object.at(field.name));
      for (const auto& other : ConfigSchema::fields()) {
        if (other.name == field.name) {
          QVERIFY2(other.get(config) == object.at(field.name), field.name.c_str());
        } else {
          QVERIFY2(other.get(config) == other.defaultValue(),
                   (field.name + " also changed " + other.name).c_str());
        }
      }
    }
  }

  void schemaMetadata() {
    const std::vector<std::string> expected = {
        "Model & hook", "Data",   "SAE size",         "Loss",    "Learning rate", "Initialisation",
        "Optimiser",    "Buffer", "Feature tracking", "Logging", "Misc",          "Synthetic data",
        "Advanced"};
    QCOMPARE(ConfigSchema::groups(), expected);
    // Fields come group by group, in the groups' order (the form and toJson rely on it).
    size_t groupIndex = 0;
    for (const auto& field : ConfigSchema::fields()) {
      auto it = std::find(expected.begin(), expected.end(), field.group);
      QVERIFY2(it != expected.end(), field.name.c_str());
      const size_t index = static_cast<size_t>(it - expected.begin());
      QVERIFY2(index >= groupIndex, (field.name + " is out of group order").c_str());
      groupIndex = index;
    }
    // The notebook's first fields lead the form.
    QCOMPARE(ConfigSchema::fields()[0].name, std::string("model_name"));
    QCOMPARE(ConfigSchema::fields()[1].name, std::string("hook_point"));
    QCOMPARE(ConfigSchema::find("model_name")->group, std::string("Model & hook"));
    QCOMPARE(ConfigSchema::find("l1_coefficient")->group, std::string("Loss"));
    QCOMPARE(ConfigSchema::find("synthetic_seed")->group, std::string("Synthetic data"));
    QVERIFY(ConfigSchema::find("nope") == nullptr);
    QCOMPARE(ConfigSchema::indexOf("model_name"), 0);
    QCOMPARE(ConfigSchema::indexOf("nope"), -1);

    // Types, nullability, defaults from SAELens 1.5.
    QVERIFY(ConfigSchema::find("d_in")->type() == sae::FieldType::Int);
    QVERIFY(ConfigSchema::find("lr")->type() == sae::FieldType::Float);
    QVERIFY(ConfigSchema::find("dtype")->type() == sae::FieldType::String);
    QVERIFY(ConfigSchema::find("verbose")->type() == sae::FieldType::Bool);
    QVERIFY(ConfigSchema::find("model_kwargs")->type() == sae::FieldType::Json);
    QVERIFY(ConfigSchema::find("lr_end")->nullable());
    QVERIFY(ConfigSchema::find("hook_point_head_index")->nullable());
    QVERIFY(!ConfigSchema::find("lr")->nullable());
    QCOMPARE(ConfigSchema::find("adam_beta1")->defaultValue(), json(0.0));
    QCOMPARE(ConfigSchema::find("lr_warm_up_steps")->defaultValue(), json(500));
    QCOMPARE(ConfigSchema::find("normalize_sae_decoder")->defaultValue(), json(true));
    QCOMPARE(ConfigSchema::find("dtype")->defaultValue(), json("float32"));
    QCOMPARE(ConfigSchema::find("lr_end")->defaultValue(), json(nullptr));
    QCOMPARE(ConfigSchema::find("model_kwargs")->defaultValue(), json::object());

    // Ranges, choices and paths the form and the docs read.
    const ConfigField* lr = ConfigSchema::find("lr");
    QVERIFY(lr->minimum && *lr->minimum == 0 && lr->exclusiveMinimum && lr->sweepable);
    const ConfigField* beta = ConfigSchema::find("adam_beta2");
    QVERIFY(beta->maximum && *beta->maximum == 1 && beta->exclusiveMaximum);
    QCOMPARE(*ConfigSchema::find("d_in")->minimum, 1.0);
    QCOMPARE(*ConfigSchema::find("n_batches_in_buffer")->minimum, 2.0);
    QCOMPARE(ConfigSchema::find("b_dec_init_method")->choices,
             (std::vector<std::string>{"geometric_median", "mean", "zeros"}));
    QCOMPARE(
        ConfigSchema::find("lr_scheduler_name")->choices,
        (std::vector<std::string>{"constant", "cosineannealing", "cosineannealingwarmrestarts"}));
    QCOMPARE(ConfigSchema::find("finetuning_method")->choices,
             (std::vector<std::string>{"scale", "decoder", "unrotated_decoder"}));
    QCOMPARE(ConfigSchema::find("mse_loss_normalization")->choices,
             (std::vector<std::string>{"dense_batch"}));
    QCOMPARE(ConfigSchema::find("activation_fn")->choices,
             (std::vector<std::string>{"relu", "tanh-relu"}));
    QCOMPARE(ConfigSchema::find("dtype")->choices.size(), size_t(8));
    for (const char* name :
         {"dataset_path", "cached_activations_path", "from_pretrained_path", "model_name"}) {
      QVERIFY2(ConfigSchema::find(name)->isPath, name);
    }
    QVERIFY(!ConfigSchema::find("checkpoint_path")->isPath);
    QVERIFY(ConfigSchema::find("compile_llm")->advanced);
    QVERIFY(!ConfigSchema::find("d_in")->advanced);
  }

  void closestName() {
    QCOMPARE(ConfigSchema::closestName("l1_coefficent"), std::string("l1_coefficient"));
    QCOMPARE(ConfigSchema::closestName("expansion"), std::string("expansion_factor"));
    QCOMPARE(ConfigSchema::closestName("l1_warmup_steps"), std::string("l1_warm_up_steps"));
    QCOMPARE(ConfigSchema::closestName("lr_warmup_steps"), std::string("lr_warm_up_steps"));
    QCOMPARE(ConfigSchema::closestName("hookpoint"), std::string("hook_point"));
    QCOMPARE(ConfigSchema::closestName("dinn"), std::string("d_in"));
    QCOMPARE(ConfigSchema::editDistance("kitten", "sitting"), size_t(3));
    QCOMPARE(ConfigSchema::editDistance("", "abc"), size_t(3));
    QCOMPARE(ConfigSchema::editDistance("abc", "abc"), size_t(0));
  }

  void roundTripEveryField() {
    const RunConfig original = RunConfig::fromJson(nonDefaultObject(), "test");
    // Every field really is non-default (so the round trip proves something).
    for (const auto& field : ConfigSchema::fields()) {
      if (field.name == "use_cached_activations" || field.name == "use_synthetic_activations" ||
          field.name == "model_class_name") {
        continue;  // both true is invalid; HookedTransformer is the only choice
      }
      QVERIFY2(field.get(original) != field.defaultValue(), field.name.c_str());
    }
    const json object = original.toJson();
    QCOMPARE(object.size(), ConfigSchema::fields().size());
    QCOMPARE(object, nonDefaultObject());
    const RunConfig copy = RunConfig::fromJson(object, "copy");
    compareEveryField(original, copy);

    // The preset-like defaults round trip too; d_sae is always written as derived.
    RunConfig defaults;
    const json defaultObject = defaults.toJson();
    QCOMPARE(defaultObject.at("d_sae"), json(2048));
    const RunConfig defaultsCopy = RunConfig::fromJson(defaultObject);
    QCOMPARE(defaultsCopy.toJson(), defaultObject);
    QCOMPARE(defaultsCopy.d_sae.value_or(-1), int64_t(2048));
  }

  void saveAndLoadFile() {
    QTemporaryDir dir;
    QVERIFY(dir.isValid());
    const std::string path = dir.filePath("nested/run.json").toStdString();
    const RunConfig original = RunConfig::fromJson(nonDefaultObject(), "test");
    original.saveFile(path);  // creates nested/
    const RunConfig loaded = RunConfig::loadFile(path);
    compareEveryField(original, loaded);

    // Written in schema order, two-space indented, newline-terminated.
    const std::string text = readText(path);
    QVERIFY(text.rfind("{\n  \"model_name\": \"gelu-1l\",\n  \"hook_point\"", 0) == 0);
    QCOMPARE(text.back(), '\n');
    const auto ordered = nlohmann::ordered_json::parse(text);
    size_t i = 0;
    for (const auto& item : ordered.items()) {
      QCOMPARE(item.key(), ConfigSchema::fields()[i++].name);
    }
    QCOMPARE(i, ConfigSchema::fields().size());
    // No temporary file left behind.
    QCOMPARE(std::distance(fs::directory_iterator(fs::path(path).parent_path()),
                           fs::directory_iterator()),
             std::ptrdiff_t(1));
  }

  void unknownKeyDidYouMean() {
    json object = {{"l1_coefficent", 0.1}};
    try {
      RunConfig::fromJson(object, "my.json");
      QFAIL("no error");
    } catch (const ConfigError& error) {
      const std::string what = error.what();
      QVERIFY2(contains(what, "unknown field 'l1_coefficent'; did you mean 'l1_coefficient'?"),
               what.c_str());
      QVERIFY2(what.rfind("my.json: 1 problem", 0) == 0, what.c_str());
      QCOMPARE(error.issues().size(), size_t(1));
      QCOMPARE(error.issues()[0].field, std::string("l1_coefficent"));
    }
    // A prefix of a field is suggested too.
    const std::string prefix = errorOf([] { RunConfig::fromJson({{"expansion", 8}}); });
    QVERIFY2(contains(prefix, "unknown field 'expansion'; did you mean 'expansion_factor'?"),
             prefix.c_str());
    // Nothing close: no misleading suggestion.
    const std::string far = errorOf([] { RunConfig::fromJson({{"qqqqqqqqqqqqqqqqqqqq", 1}}); });
    QVERIFY2(contains(far, "unknown field 'qqqqqqqqqqqqqqqqqqqq'"), far.c_str());
    QVERIFY2(!contains(far, "did you mean"), far.c_str());
  }

  void wrongTypesNameFieldValueAndType() {
    struct Case {
      json object;
      std::vector<std::string> parts;
    };
    const std::vector<Case> cases = {
        {{{"d_in", "abc"}}, {"d_in: expected an integer, got \"abc\" (a string)"}},
        {{{"d_in", 1.5}}, {"d_in: expected an integer, got 1.5"}},
        {{{"d_in", nullptr}}, {"d_in: expected an integer, got null"}},
        {{{"lr", true}}, {"lr: expected a number, got true (a boolean)"}},
        {{{"use_ghost_grads", 1}}, {"use_ghost_grads: expected true or false, got 1"}},
        {{{"model_name", 5}}, {"model_name: expected a string, got 5"}},
        {{{"lr_end", "x"}}, {"lr_end: expected a number or null, got \"x\""}},
        {{{"model_kwargs", json::array({1})}}, {"model_kwargs: expected a JSON object, got [1]"}},
        {{{"device", json::object()}}, {"device: expected a string, got {} (an object)"}},
        {{{"d_in", 1e30}}, {"d_in: expected an integer"}},
    };
    for (const auto& c : cases) {
      const std::string what = errorOf([&] { RunConfig::fromJson(c.object); });
      for (const auto& part : c.parts) {
        QVERIFY2(contains(what, part), (c.object.dump() + " -> " + what).c_str());
      }
    }
    // Whole-valued numbers are fine for integers (2e6 tokens).
    const RunConfig config = RunConfig::fromJson({{"training_tokens", 2e6}, {"d_in", 512.0}});
    QCOMPARE(config.training_tokens, int64_t(2000000));
    QCOMPARE(config.d_in, int64_t(512));
    // Integers are fine for floats.
    QCOMPARE(RunConfig::fromJson({{"lr", 1}}).lr, 1.0);
    // Not an object at all.
    const std::string notObject = errorOf([] { RunConfig::fromJson(json::array({1, 2}), "x"); });
    QVERIFY2(contains(notObject, "expected a JSON object"), notObject.c_str());
  }

  void sweepsRejected() {
    for (const char* name : {"l1_coefficient", "lr", "expansion_factor", "lr_warm_up_steps",
                             "lr_scheduler_name", "lr_end", "b_dec_init_method"}) {
      const std::string what = errorOf([&] { RunConfig::fromJson({{name, json::array({1, 2})}}); });
      // One run takes one value; the message says where lists (sweeps) are trained.
      QVERIFY2(contains(what, std::string(name) +
                                  ": a list of values is a sweep (one SAE per combination): "
                                  "train the file with sae-train --config FILE"),
               what.c_str());
    }
    // A list where SAELens never took one is a plain type error.
    const std::string what = errorOf([] { RunConfig::fromJson({{"d_in", json::array({1})}}); });
    QVERIFY2(contains(what, "d_in: expected an integer, got [1] (a list)"), what.c_str());
  }

  void collectsAllIssues() {
    const json object = {
        {"l1_coefficent", 1}, {"d_in", "x"}, {"lr", 0}, {"b_dec_init_method", "median"}};
    try {
      RunConfig::fromJson(object, "cfg.json");
      QFAIL("no error");
    } catch (const ConfigError& error) {
      const std::string what = error.what();
      QVERIFY2(what.rfind("cfg.json: 4 problems", 0) == 0, what.c_str());
      QCOMPARE(error.issues().size(), size_t(4));
      // Schema order: d_in (Model & hook), lr (Learning rate), b_dec_init_method
      // (Initialisation); unknown keys first.
      QCOMPARE(error.issues()[0].field, std::string("l1_coefficent"));
      QCOMPARE(error.issues()[1].field, std::string("d_in"));
      QCOMPARE(error.issues()[2].field, std::string("lr"));
      QCOMPARE(error.issues()[3].field, std::string("b_dec_init_method"));
    }
  }

  void derivedDSaeFromJson() {
    const RunConfig config = RunConfig::fromJson({{"d_in", 100}, {"expansion_factor", 3}});
    QCOMPARE(config.d_sae.value_or(-1), int64_t(300));
    // Matching explicit value: fine. A different one is reported, not silently dropped.
    QVERIFY(RunConfig::fromJson({{"d_sae", 2048}}).d_sae == 2048);
    const std::string what = errorOf([] { RunConfig::fromJson({{"d_sae", 1000}}); });
    QVERIFY2(contains(what, "d_sae: 1000 does not match d_in * expansion_factor = 2048"),
             what.c_str());
  }

  void brokenJsonReportsLineAndColumn() {
    QTemporaryDir dir;
    const std::string path = dir.filePath("broken.json").toStdString();
    // Line 3, column 5 holds the stray 'x'.
    writeText(path, "{\n  \"d_in\": 512,\n    x: 1\n}\n");
    const std::string what = errorOf([&] { RunConfig::loadFile(path); });
    QVERIFY2(contains(what, path), what.c_str());
    QVERIFY2(contains(what, "line 3"), what.c_str());
    QVERIFY2(contains(what, "column 5"), what.c_str());
    QVERIFY2(!contains(what, "[json.exception"), what.c_str());

    // A missing comma on line 2: nlohmann stops after reading the next key "lr".
    writeText(path, "{\n  \"d_in\": 512\n  \"lr\": 1\n}");
    const std::string second = errorOf([&] { RunConfig::loadFile(path); });
    QVERIFY2(contains(second, "line 3, column 6"), second.c_str());

    // Truncated file.
    writeText(path, "{\n  \"d_in\": 512,\n");
    const std::string truncated = errorOf([&] { RunConfig::loadFile(path); });
    QVERIFY2(contains(truncated, "line 3"), truncated.c_str());

    // Valid JSON, invalid config: the file name is the source.
    writeText(path, "{\"d_in\": 0}");
    const std::string invalid = errorOf([&] { RunConfig::loadFile(path); });
    QVERIFY2(invalid.rfind(path + ": ", 0) == 0, invalid.c_str());
    QVERIFY2(contains(invalid, "d_in: 0 is not allowed: must be at least 1"), invalid.c_str());
  }

  void missingFile() {
    const std::string what = errorOf([] { RunConfig::loadFile("/nonexistent/dir/run.json"); });
    QVERIFY2(contains(what, "/nonexistent/dir/run.json"), what.c_str());
    QVERIFY2(contains(what, "No such file"), what.c_str());
  }

  void overrides() {
    RunConfig config;
    config.applyOverride("l1_coefficient=0.01");
    QCOMPARE(config.l1_coefficient, 0.01);
    config.applyOverride("training_tokens=1e6");
    QCOMPARE(config.training_tokens, int64_t(1000000));
    config.applyOverride("d_in=1024");
    QCOMPARE(config.d_in, int64_t(1024));
    QCOMPARE(config.d_sae.value_or(-1), int64_t(4096));  // re-derived
    config.applyOverride("lr=2");
    QCOMPARE(config.lr, 2.0);
    // Strings: bare, quoted, and text that happens to parse as JSON.
    config.applyOverride("device=cuda:1");
    QCOMPARE(config.device, std::string("cuda:1"));
    config.applyOverride("dtype=torch.float16");
    QCOMPARE(config.dtype, std::string("torch.float16"));
    config.applyOverride("model_name=\"gelu-1l\"");
    QCOMPARE(config.model_name, std::string("gelu-1l"));
    config.applyOverride("wandb_id=12345");
    QCOMPARE(config.wandb_id.value_or(""), std::string("12345"));
    config.applyOverride("run_name=a=b");  // only the first '=' splits
    QCOMPARE(config.run_name.value_or(""), std::string("a=b"));
    config.applyOverride("checkpoint_path=");
    QCOMPARE(config.checkpoint_path, std::string(""));
    // Bools and null.
    config.applyOverride("use_ghost_grads=true");
    QVERIFY(config.use_ghost_grads);
    config.applyOverride("normalize_sae_decoder=false");
    QVERIFY(!config.normalize_sae_decoder);
    config.applyOverride("lr_end=1e-5");
    QCOMPARE(config.lr_end.value_or(-1), 1e-5);
    config.applyOverride("lr_end=null");
    QVERIFY(!config.lr_end);
    config.applyOverride("run_name=null");
    QVERIFY(!config.run_name);
    config.applyOverride("hook_point_head_index=2");
    QCOMPARE(config.hook_point_head_index.value_or(-1), int64_t(2));
    config.applyOverride("model_kwargs={\"a\": 1}");
    QCOMPARE(config.model_kwargs, json({{"a", 1}}));

    // Errors name the key.
    const std::string unknown = errorOf([&] { config.applyOverride("l1_coefficent=1"); });
    QVERIFY2(contains(unknown, "unknown field 'l1_coefficent'; did you mean 'l1_coefficient'?"),
             unknown.c_str());
    const std::string badType = errorOf([&] { config.applyOverride("d_in=abc"); });
    QVERIFY2(contains(badType, "d_in: expected an integer, got \"abc\""), badType.c_str());
    const std::string badBool = errorOf([&] { config.applyOverride("use_ghost_grads=yes"); });
    QVERIFY2(contains(badBool, "use_ghost_grads: expected true or false"), badBool.c_str());
    const std::string sweep = errorOf([&] { config.applyOverride("lr=[1e-4, 1e-3]"); });
    QVERIFY2(contains(sweep, "lr: a list of values is a sweep"), sweep.c_str());
    const std::string noEquals = errorOf([&] { config.applyOverride("d_in"); });
    QVERIFY2(contains(noEquals, "expected key=value"), noEquals.c_str());
    QCOMPARE(config.d_in, int64_t(1024));  // failed overrides change nothing
  }

  void relativePathsResolveAgainstTheFile() {
    QTemporaryDir dir;
    const fs::path base = dir.path().toStdString();
    fs::create_directories(base / "data");
    fs::create_directories(base / "models" / "tiny");
    const json object = {
        {"dataset_path", "data"},                     // exists: resolved
        {"cached_activations_path", "./cache/acts"},  // explicit ./: resolved though missing
        {"from_pretrained_path", "missing/sae"},      // hub-like and missing: unchanged
        {"model_name", "models/tiny"},                // existing folder: resolved
    };
    writeText((base / "run.json").string(), object.dump());
    const RunConfig config = RunConfig::loadFile((base / "run.json").string());
    QCOMPARE(config.dataset_path, (base / "data").string());
    QCOMPARE(config.cached_activations_path.value_or(""), (base / "cache" / "acts").string());
    QCOMPARE(config.from_pretrained_path.value_or(""), std::string("missing/sae"));
    QCOMPARE(config.model_name, (base / "models" / "tiny").string());

    // Model and dataset names that are not local stay as written; absolute paths too.
    const RunConfig named = RunConfig::fromJson({{"model_name", "gelu-1l"},
                                                 {"dataset_path", "NeelNanda/c4-tokenized-2b"},
                                                 {"from_pretrained_path", "/abs/sae"}},
                                                "named", base.string());
    QCOMPARE(named.model_name, std::string("gelu-1l"));
    QCOMPARE(named.dataset_path, std::string("NeelNanda/c4-tokenized-2b"));
    QCOMPARE(named.from_pretrained_path.value_or(""), std::string("/abs/sae"));
    // No base folder: nothing is resolved.
    const RunConfig plain = RunConfig::fromJson({{"dataset_path", "./data"}});
    QCOMPARE(plain.dataset_path, std::string("./data"));
  }
};

QTEST_APPLESS_MAIN(TestConfigJson)
#include "tst_config_json.moc"
