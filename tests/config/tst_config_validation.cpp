// RunConfig::validate(): every rule fires on its own, names the field and the value, and says
// what is allowed; SAELens's own rejections keep SAELens's wording; valid configs pass.
#include <QtTest>

#include <functional>

#include "config/ConfigError.h"
#include "config/ConfigSchema.h"
#include "config/RunConfig.h"
#include "support/QtTestStrings.h"

using sae::ConfigError;
using sae::RunConfig;

namespace {

// The notebook's recipe, small enough to be valid with every default left alone.
RunConfig validBase() {
  RunConfig config;
  config.model_name = "gelu-1l";
  config.hook_point = "blocks.0.hook_mlp_out";
  config.training_tokens = 4096 * 1000;
  config.lr_warm_up_steps = 0;
  return config;
}

std::string joinIssues(const std::vector<ConfigError::Issue>& issues) {
  std::string text;
  for (const auto& issue : issues)
    text += "[" + issue.field + "] " + issue.message + "\n";
  return text;
}

struct Rule {
  const char* name;
  std::function<void(RunConfig&)> change;
  std::string field;                 // the field the issue is filed under
  std::vector<std::string> phrases;  // substrings of the message
};

}  // namespace

class TestConfigValidation : public QObject {
  Q_OBJECT

 private Q_SLOTS:
  void baseIsValid() {
    const auto issues = validBase().validate();
    QVERIFY2(issues.empty(), joinIssues(issues).c_str());
  }

  void everyRuleReports() {
    const std::vector<Rule> rules = {
        // --- SAELens __post_init__ rejections
        {"b_dec_init_method",
         [](RunConfig& c) { c.b_dec_init_method = "median"; },
         "b_dec_init_method",
         {"b_dec_init_method: \"median\" is not allowed: choose one of geometric_median, mean, "
          "zeros"}},
        {"normalize+heuristic",
         [](RunConfig& c) {
           c.normalize_sae_decoder = true;
           c.decoder_heuristic_init = true;
         },
         "normalize_sae_decoder",
         {"normalize_sae_decoder: true cannot be combined with decoder_heuristic_init = true",
          "You can't normalize the decoder and use heuristic initialization.",
          "set normalize_sae_decoder to false to use decoder_heuristic_init"}},
        {"normalize+scale",
         [](RunConfig& c) {
           c.normalize_sae_decoder = true;
           c.scale_sparsity_penalty_by_decoder_norm = true;
         },
         "normalize_sae_decoder",
         {"scale_sparsity_penalty_by_decoder_norm = true",
          "set normalize_sae_decoder to false to use scale_sparsity_penalty_by_decoder_norm"}},
        {"decoder finetuning",
         [](RunConfig& c) {
           c.finetuning_method = "decoder";
           c.apply_b_dec_to_input = true;
         },
         "finetuning_method",
         {"finetuning_method: \"decoder\" cannot be combined with apply_b_dec_to_input = true",
          "set apply_b_dec_to_input to false"}},
        {"scheduler",
         [](RunConfig& c) { c.lr_scheduler_name = "linear"; },
         "lr_scheduler_name",
         {"lr_scheduler_name: Unsupported scheduler: linear; choose one of constant, "
          "cosineannealing, cosineannealingwarmrestarts"}},
        {"lr_end 0 with decay",
         [](RunConfig& c) {
           c.lr_end = 0.0;
           c.lr_decay_steps = 100;
         },
         "lr_end",
         {"lr_end: Cannot have decay_steps with lr_end=0.0, this would decay from 0 to 0 and be "
          "a waste."}},
        {"dtype",
         [](RunConfig& c) { c.dtype = "float8"; },
         "dtype",
         {"dtype: \"float8\" is not allowed: choose one of float32, float64, float16, bfloat16, "
          "torch.float32"}},
        // --- steps and schedule lengths
        {"no step",
         [](RunConfig& c) { c.training_tokens = 100; },
         "training_tokens",
         {"training_tokens: 100 gives no training step", "train_batch_size = 4096"}},
        {"warm-up + decay",
         [](RunConfig& c) {
           c.lr_warm_up_steps = 600;
           c.lr_decay_steps = 500;
         },
         "lr_decay_steps",
         {"lr_warm_up_steps + lr_decay_steps = 600 + 500 exceeds the 1000 total training steps"}},
        // --- ranges
        {"train_batch_size",
         [](RunConfig& c) { c.train_batch_size = 0; },
         "train_batch_size",
         {"train_batch_size: 0 is not allowed: must be at least 1"}},
        {"n_batches_in_buffer",
         [](RunConfig& c) { c.n_batches_in_buffer = 1; },
         "n_batches_in_buffer",
         {"n_batches_in_buffer: 1 is not allowed: must be at least 2"}},
        {"wandb_log_frequency",
         [](RunConfig& c) { c.wandb_log_frequency = 0; },
         "wandb_log_frequency",
         {"wandb_log_frequency: 0 is not allowed: must be at least 1"}},
        {"feature_sampling_window",
         [](RunConfig& c) { c.feature_sampling_window = 0; },
         "feature_sampling_window",
         {"feature_sampling_window: 0 is not allowed: must be at least 1"}},
        {"dead_feature_window",
         [](RunConfig& c) { c.dead_feature_window = -5; },
         "dead_feature_window",
         {"dead_feature_window: -5 is not allowed: must be at least 1"}},
        {"hook_point_layer",
         [](RunConfig& c) { c.hook_point_layer = -1; },
         "hook_point_layer",
         {"hook_point_layer: -1 is not allowed: must be at least 0"}},
        {"num_threads",
         [](RunConfig& c) { c.num_threads = -2; },
         "num_threads",
         {"num_threads: -2 is not allowed: must be at least 0"}},
        {"d_in",
         [](RunConfig& c) { c.d_in = 0; },
         "d_in",
         {"d_in: 0 is not allowed: must be at least 1"}},
        {"context_size",
         [](RunConfig& c) { c.context_size = 0; },
         "context_size",
         {"context_size: 0 is not allowed: must be at least 1"}},
        {"lr",
         [](RunConfig& c) { c.lr = 0; },
         "lr",
         {"lr: 0.0 is not allowed: must be greater than 0"}},
        {"lp_norm",
         [](RunConfig& c) { c.lp_norm = -1; },
         "lp_norm",
         {"lp_norm: -1.0 is not allowed: must be greater than 0"}},
        {"adam_beta1",
         [](RunConfig& c) { c.adam_beta1 = 1.0; },
         "adam_beta1",
         {"adam_beta1: 1.0 is not allowed: must be in [0, 1)"}},
        {"adam_beta2",
         [](RunConfig& c) { c.adam_beta2 = -0.5; },
         "adam_beta2",
         {"adam_beta2: -0.5 is not allowed: must be in [0, 1)"}},
        {"l1_coefficient",
         [](RunConfig& c) { c.l1_coefficient = -0.1; },
         "l1_coefficient",
         {"l1_coefficient: -0.1 is not allowed: must be at least 0"}},
        {"hook_point_head_index",
         [](RunConfig& c) { c.hook_point_head_index = -1; },
         "hook_point_head_index",
         {"hook_point_head_index: -1 is not allowed"}},
        {"lr_end negative",
         [](RunConfig& c) { c.lr_end = -1e-3; },
         "lr_end",
         {"lr_end: -0.001 is not allowed: must be at least 0"}},
        // --- choices
        {"activation_fn",
         [](RunConfig& c) { c.activation_fn = "gelu"; },
         "activation_fn",
         {"activation_fn: \"gelu\" is not allowed: choose one of relu, tanh-relu"}},
        {"mse_loss_normalization",
         [](RunConfig& c) { c.mse_loss_normalization = "batch"; },
         "mse_loss_normalization",
         {"mse_loss_normalization: \"batch\" is not allowed: choose null or one of dense_batch"}},
        {"finetuning_method",
         [](RunConfig& c) { c.finetuning_method = "full"; },
         "finetuning_method",
         {"finetuning_method: \"full\" is not allowed: choose null or one of scale, decoder, "
          "unrotated_decoder"}},
        {"device",
         [](RunConfig& c) { c.device = "gpu"; },
         "device",
         {"device: \"gpu\" is not allowed: use cpu, cuda, cuda:N (N = 0, 1, ...) or mps"}},
        {"device cuda:", [](RunConfig& c) { c.device = "cuda:"; }, "device", {"\"cuda:\""}},
        {"device cuda:x", [](RunConfig& c) { c.device = "cuda:x"; }, "device", {"\"cuda:x\""}},
        // --- synthetic data
        {"synthetic_n_features",
         [](RunConfig& c) { c.synthetic_n_features = 0; },
         "synthetic_n_features",
         {"synthetic_n_features: 0 is not allowed: must be at least 1"}},
        {"probability 0",
         [](RunConfig& c) { c.synthetic_feature_probability = 0; },
         "synthetic_feature_probability",
         {"synthetic_feature_probability: 0.0 is not allowed: must be in (0, 1]"}},
        {"probability 1.5",
         [](RunConfig& c) { c.synthetic_feature_probability = 1.5; },
         "synthetic_feature_probability",
         {"synthetic_feature_probability: 1.5 is not allowed: must be in (0, 1]"}},
        {"noise",
         [](RunConfig& c) { c.synthetic_noise_std = -1; },
         "synthetic_noise_std",
         {"synthetic_noise_std: -1.0 is not allowed: must be at least 0"}},
        // --- sources
        {"cached and synthetic",
         [](RunConfig& c) {
           c.use_cached_activations = true;
           c.use_synthetic_activations = true;
         },
         "use_synthetic_activations",
         {"use_synthetic_activations: true cannot be combined with use_cached_activations"}},
        {"cached without path",
         [](RunConfig& c) {
           c.use_cached_activations = true;
           c.dataset_path = "";
         },
         "use_cached_activations",
         {"use_cached_activations: true needs cached_activations_path (or dataset_path and "
          "model_name to derive it)"}},
        {"no model",
         [](RunConfig& c) { c.model_name = ""; },
         "model_name",
         {"model_name: \"\" is not allowed", "use_synthetic_activations"}},
        {"no dataset",
         [](RunConfig& c) { c.dataset_path = ""; },
         "dataset_path",
         {"dataset_path: \"\" is not allowed"}},
        {"no hook",
         [](RunConfig& c) { c.hook_point = ""; },
         "hook_point",
         {"hook_point: \"\" is not allowed"}},
        {"d_sae",
         [](RunConfig& c) { c.d_sae = 100; },
         "d_sae",
         {"d_sae: 100 does not match d_in * expansion_factor = 2048"}},
    };
    for (const auto& rule : rules) {
      RunConfig config = validBase();
      rule.change(config);
      const auto issues = config.validate();
      const std::string all = joinIssues(issues);
      const std::string context = std::string(rule.name) + ":\n" + all;
      QVERIFY2(!issues.empty(), context.c_str());
      const auto it = std::find_if(issues.begin(), issues.end(),
                                   [&](const auto& issue) { return issue.field == rule.field; });
      QVERIFY2(it != issues.end(), context.c_str());
      for (const auto& phrase : rule.phrases) {
        QVERIFY2(it->message.find(phrase) != std::string::npos,
                 (context + "missing: " + phrase).c_str());
      }
    }
  }

  void acceptedSpellings() {
    for (const char* dtype : {"float32", "torch.float32", "float64", "torch.float64", "float16",
                              "torch.float16", "bfloat16", "torch.bfloat16"}) {
      RunConfig config = validBase();
      config.dtype = dtype;
      QVERIFY2(config.validate().empty(), dtype);
    }
    for (const char* device : {"cpu", "cuda", "cuda:0", "cuda:12", "mps"}) {
      RunConfig config = validBase();
      config.device = device;
      QVERIFY2(config.validate().empty(), device);
    }
    // SAELens lower-cases the scheduler name.
    for (const char* name : {"constant", "Constant", "CosineAnnealing",
                             "cosineannealingwarmrestarts", "COSINEANNEALINGWARMRESTARTS"}) {
      RunConfig config = validBase();
      config.lr_scheduler_name = name;
      QVERIFY2(config.validate().empty(), name);
    }
    // Nulls are fine for nullable choice fields; lr_end null means lr / 10, so decay is fine.
    RunConfig config = validBase();
    config.mse_loss_normalization.reset();
    config.finetuning_method.reset();
    config.lr_decay_steps = 100;
    QVERIFY(config.validate().empty());
    // Synthetic data needs neither model nor dataset.
    config.use_synthetic_activations = true;
    config.model_name = "";
    config.dataset_path = "";
    config.hook_point = "";
    QVERIFY2(config.validate().empty(), joinIssues(config.validate()).c_str());
    // Cached activations with an explicit folder need no dataset.
    RunConfig cached = validBase();
    cached.use_cached_activations = true;
    cached.dataset_path = "";
    cached.cached_activations_path = "/acts";
    QVERIFY2(cached.validate().empty(), joinIssues(cached.validate()).c_str());
    // The April-2024 recipe: normalize_sae_decoder off, heuristic init and norm scaling on.
    RunConfig april = validBase();
    april.normalize_sae_decoder = false;
    april.decoder_heuristic_init = true;
    april.scale_sparsity_penalty_by_decoder_norm = true;
    april.finetuning_method = "decoder";
    april.apply_b_dec_to_input = false;
    QVERIFY(april.validate().empty());
  }

  void issuesInSchemaOrder() {
    RunConfig config = validBase();
    config.device = "tpu";             // Misc
    config.adam_beta1 = 2;             // Optimiser
    config.d_in = 0;                   // Model & hook
    config.b_dec_init_method = "odd";  // Initialisation
    const auto issues = config.validate();
    QCOMPARE(issues.size(), size_t(4));
    QCOMPARE(issues[0].field, std::string("d_in"));
    QCOMPARE(issues[1].field, std::string("b_dec_init_method"));
    QCOMPARE(issues[2].field, std::string("adam_beta1"));
    QCOMPARE(issues[3].field, std::string("device"));
    // fromJson throws them together.
    try {
      RunConfig::fromJson(config.toJson(), "x.json");
      QFAIL("no error");
    } catch (const ConfigError& error) {
      QCOMPARE(error.issues().size(), size_t(4));
      QVERIFY(std::string(error.what()).rfind("x.json: 4 problems\n  d_in: ", 0) == 0);
    }
  }

  void defaultConfigIsValid() {
    // SAELens 1.5 defaults: 2M tokens / 4096 = 488 steps with 500 warm-up steps. Warm-up alone
    // may outlast training (SAELens accepts it); only warm-up + decay overlapping is rejected.
    const auto issues = RunConfig().validate();
    QVERIFY2(issues.empty(), joinIssues(issues).c_str());
    RunConfig config = validBase();
    config.lr_warm_up_steps = 1001;  // of 1000 steps
    QVERIFY(config.validate().empty());
    config.lr_decay_steps = 1;
    QCOMPARE(config.validate().size(), size_t(1));
    QCOMPARE(config.validate()[0].field, std::string("lr_decay_steps"));
  }
};

QTEST_APPLESS_MAIN(TestConfigValidation)
#include "tst_config_validation.moc"
