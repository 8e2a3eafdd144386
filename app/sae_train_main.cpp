// sae-train: the headless trainer. Same Trainer as the GUI; only the listener differs.
//
//   sae-train (--config FILE | --preset NAME) [--set key=value]... [--out DIR] [--dry-run]
//   sae-train --resume RUN_DIR                  (continue a stopped or killed run)
//   sae-train cache-activations (--config FILE | --preset NAME) [--set key=value]... --out DIR
//   sae-train --list-presets
//   sae-train --benchmark [--json]        (the SAE training step)
//   sae-train --benchmark-model [--json]  (the language model up to blocks.0.hook_mlp_out)
//
// Exit codes: 0 done, 1 failure during training, 2 bad config or input, 130 interrupted
// (a checkpoint is saved first).
#include <chrono>
#include <csignal>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "ConsoleReporter.h"
#include "bench/ModelBenchmark.h"
#include "bench/StepBenchmark.h"
#include "config/ConfigError.h"
#include "config/PresetLibrary.h"
#include "config/RunConfig.h"
#include "data/ActivationCacheWriter.h"
#include "demo/DemoWorld.h"
#include "model/ModelLoader.h"
#include "train/TrainingRun.h"

namespace fs = std::filesystem;

namespace {

constexpr int kExitOk = 0;
constexpr int kExitTrainingFailed = 1;
constexpr int kExitBadInput = 2;
constexpr int kExitInterrupted = 130;

volatile std::sig_atomic_t gInterrupted = 0;
void onSignal(int) {
  gInterrupted = 1;
}

// Turns Ctrl-C into a stop request the step loop sees between steps.
class InterruptWatcher : public sae::TrainingObserver {
 public:
  explicit InterruptWatcher(sae::TrainingRun& run) : run_(run) {}
  void onProgress(const sae::ProgressEvent&) override {
    if (gInterrupted) run_.requestStop();
  }

 private:
  sae::TrainingRun& run_;
};

void printUsage(std::FILE* out) {
  std::fprintf(out,
               "usage: sae-train (--config FILE | --preset NAME) [--set key=value]... [--out DIR] "
               "[--dry-run]\n"
               "       sae-train --resume RUN_DIR\n"
               "       sae-train cache-activations (--config FILE | --preset NAME) [--set "
               "key=value]... --out DIR\n"
               "       sae-train --list-presets\n"
               "       sae-train --benchmark [--json]\n"
               "       sae-train --benchmark-model [--json]\n"
               "\n"
               "Trains a sparse autoencoder with SAELens 1.5 semantics and writes the run to DIR:\n"
               "config.json, metrics.jsonl, checkpoints/<tokens>/ and final/ (SAELens layout).\n"
               "--resume continues RUN_DIR from its latest checkpoint with its own config.json,\n"
               "exactly as if it had never stopped.\n"
               "cache-activations runs the config's model up to the hook over the training tokens "
               "and\n"
               "writes SAELens's cache layout (DIR/0.safetensors, 1.safetensors, ...) for "
               "use_cached_activations.\n"
               "Exit codes: 0 done, 1 training failed, 2 bad config or input, 130 interrupted.\n");
}

std::string timestamp() {
  std::time_t now = std::time(nullptr);
  char text[32];
  std::strftime(text, sizeof text, "%Y%m%d-%H%M%S", std::localtime(&now));
  return text;
}

struct Arguments {
  std::string configPath, preset, outDir, resumeDir;
  std::vector<std::string> overrides;
  bool cacheActivations = false;
  bool dryRun = false, listPresets = false, benchmark = false, benchmarkModel = false, json = false,
       help = false;
};

// Throws ConfigError on an unknown or incomplete option.
Arguments parseArguments(int argc, char** argv) {
  Arguments args;
  auto value = [&](int& i, const std::string& option) -> std::string {
    if (i + 1 >= argc) throw sae::ConfigError("option " + option + " needs a value");
    return argv[++i];
  };
  int first = 1;
  if (argc > 1 && std::string(argv[1]) == "cache-activations") {
    args.cacheActivations = true;
    first = 2;
  }
  for (int i = first; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--config") {
      args.configPath = value(i, a);
    } else if (a == "--preset") {
      args.preset = value(i, a);
    } else if (a == "--set") {
      args.overrides.push_back(value(i, a));
    } else if (a == "--out") {
      args.outDir = value(i, a);
    } else if (a == "--resume") {
      args.resumeDir = value(i, a);
    } else if (a == "--dry-run") {
      args.dryRun = true;
    } else if (a == "--list-presets") {
      args.listPresets = true;
    } else if (a == "--benchmark") {
      args.benchmark = true;
    } else if (a == "--benchmark-model") {
      args.benchmarkModel = true;
    } else if (a == "--json") {
      args.json = true;
    } else if (a == "-h" || a == "--help") {
      args.help = true;
    } else {
      throw sae::ConfigError("unknown option '" + a + "'; run sae-train --help for the options");
    }
  }
  if (!args.resumeDir.empty() && !args.help) {
    if (!args.configPath.empty() || !args.preset.empty() || !args.overrides.empty() ||
        !args.outDir.empty() || args.cacheActivations || args.dryRun || args.benchmark ||
        args.benchmarkModel || args.listPresets)
      throw sae::ConfigError(
          "--resume RUN_DIR takes no other options: the run continues with RUN_DIR/config.json "
          "in RUN_DIR");
    return args;
  }
  if (!args.help && !args.listPresets && !args.benchmark && !args.benchmarkModel &&
      args.configPath.empty() && args.preset.empty()) {
    throw sae::ConfigError("give a config: --config FILE or --preset NAME (see --list-presets)");
  }
  if (!args.configPath.empty() && !args.preset.empty()) {
    throw sae::ConfigError("give either --config or --preset, not both");
  }
  if (args.cacheActivations && !args.help) {
    if (args.outDir.empty()) {
      throw sae::ConfigError(
          "cache-activations needs --out DIR: the folder the cache is written to");
    }
    if (args.dryRun || args.listPresets || args.benchmark || args.benchmarkModel || args.json) {
      throw sae::ConfigError(
          "cache-activations takes only --config/--preset, --set and --out; see sae-train --help");
    }
  }
  return args;
}

sae::RunConfig loadConfig(const Arguments& args) {
  sae::RunConfig config = args.preset.empty() ? sae::RunConfig::loadFile(args.configPath)
                                              : sae::PresetLibrary::load(args.preset);
  for (const auto& override : args.overrides)
    config.applyOverride(override);
  const auto issues = config.validate();
  if (!issues.empty()) {
    throw sae::ConfigError(args.preset.empty() ? args.configPath : "preset " + args.preset, issues);
  }
  return config;
}

// Inputs a dry run can check without training: the files the config points at.
void noteMissingInputs(const sae::RunConfig& config) {
  if (config.use_cached_activations) {
    const auto path = config.resolvedCachedActivationsPath();
    if (!fs::exists(fs::path(path) / "0.safetensors")) {
      std::printf("note: cached activations not found: %s/0.safetensors\n", path.c_str());
    }
  }
  if (config.from_pretrained_path && !config.from_pretrained_path->empty() &&
      !fs::exists(fs::path(*config.from_pretrained_path) / "sae_weights.safetensors")) {
    std::printf("note: from_pretrained_path has no sae_weights.safetensors: %s\n",
                config.from_pretrained_path->c_str());
  }
  if (!config.use_cached_activations && !config.use_synthetic_activations) {
    std::string model;
    if (sae::DemoWorld::isDemoName(config.model_name)) {
      model = "the demo world, built on first use in " + sae::DemoWorld::defaultFolder();
    } else {
      try {
        model = sae::ModelLoader::resolveFolder(config.model_name);
      } catch (const std::exception& error) {
        model = std::string("not found: ") + error.what();
      }
    }
    std::printf("model: %s\n", model.c_str());
  }
}

// Exit codes as for training: 2 for bad input (including a model or dataset that cannot be
// read or an output folder that already holds a cache).
int runCacheActivations(const Arguments& args, const sae::RunConfig& config) {
  try {
    const auto plan = sae::ActivationCacheWriter::plan(config);
    std::printf("Caching %lld activation rows of %s (%lld files of %lld rows) into %s\n",
                static_cast<long long>(plan.rows()), config.resolvedHookPoint().c_str(),
                static_cast<long long>(plan.files), static_cast<long long>(plan.rowsPerFile),
                args.outDir.c_str());
    std::fflush(stdout);
    sae::ActivationCacheWriter::write(config, args.outDir, [](int64_t done, int64_t total) {
      std::printf("wrote %lld/%lld\n", static_cast<long long>(done), static_cast<long long>(total));
      std::fflush(stdout);
    });
    std::printf(
        "Done: train from it with --set use_cached_activations=true --set "
        "cached_activations_path=%s\n",
        args.outDir.c_str());
    return kExitOk;
  } catch (const std::exception& error) {
    std::fprintf(stderr, "sae-train: cache-activations: %s\n", error.what());
    return kExitBadInput;
  }
}

int runTraining(const Arguments& args, const sae::RunConfig& requested) {
  // Setup reads the inputs: a failure here is bad input (exit 2), not a training failure.
  std::string outDir;
  std::unique_ptr<sae::TrainingRun> run;
  const auto log = [](const std::string& line) {
    std::printf("%s\n", line.c_str());
    std::fflush(stdout);
  };
  try {
    if (!args.resumeDir.empty()) {
      outDir = args.resumeDir;
      run = sae::TrainingRun::resume(outDir, log);
    } else {
      outDir =
          args.outDir.empty()
              ? (fs::path("runs") / (requested.effectiveRunName() + "-" + timestamp())).string()
              : args.outDir;
      run = std::make_unique<sae::TrainingRun>(requested, outDir, log);
    }
  } catch (const std::exception& error) {
    std::fprintf(stderr, "sae-train: %s\n", error.what());
    return kExitBadInput;
  }
  const sae::RunConfig& config = run->config();

  try {
    ConsoleReporter console(stdout);
    InterruptWatcher watcher(*run);
    run->addObserver(&console);
    run->addObserver(&watcher);
    console.onMessage("Run folder: " + outDir);
    if (config.use_synthetic_activations || config.use_cached_activations) {
      console.onMessage("CE loss evals skipped: no language model in this run");
    }
    std::signal(SIGINT, onSignal);
    std::signal(SIGTERM, onSignal);
    if (!run->run()) {
      std::fprintf(stderr, "Interrupted at step %lld: checkpoint saved under %s/checkpoints\n",
                   static_cast<long long>(run->step()), outDir.c_str());
      return kExitInterrupted;
    }
    return kExitOk;
  } catch (const sae::ConfigError& error) {
    std::fprintf(stderr, "sae-train: %s\n", error.what());
    return kExitBadInput;
  } catch (const std::exception& error) {
    std::fprintf(stderr, "sae-train: training failed: %s\n", error.what());
    return kExitTrainingFailed;
  }
}

}  // namespace

int main(int argc, char** argv) {
  Arguments args;
  sae::RunConfig config;
  try {
    args = parseArguments(argc, argv);
    if (args.help) {
      printUsage(stdout);
      return kExitOk;
    }
    if (args.listPresets) {
      for (const auto& name : sae::PresetLibrary::names())
        std::printf("%s\n", name.c_str());
      return kExitOk;
    }
    if (args.benchmark) return sae::StepBenchmark::runCommandLine(args.json);
    if (args.benchmarkModel) return sae::ModelBenchmark::runCommandLine(args.json);
    if (!args.resumeDir.empty()) return runTraining(args, config);
    config = loadConfig(args);
    if (args.dryRun) {
      for (const auto& line : config.preambleLines())
        std::printf("%s\n", line.c_str());
      std::printf("d_sae: %lld\n", static_cast<long long>(config.derivedDSae()));
      std::printf("total steps: %lld\n", static_cast<long long>(config.totalSteps()));
      std::printf("run name: %s\n", config.effectiveRunName().c_str());
      noteMissingInputs(config);
      std::printf("config is valid\n");
      return kExitOk;
    }
  } catch (const sae::ConfigError& error) {
    std::fprintf(stderr, "sae-train: %s\n", error.what());
    return kExitBadInput;
  } catch (const std::exception& error) {
    std::fprintf(stderr, "sae-train: %s\n", error.what());
    return kExitBadInput;
  }

  if (args.cacheActivations) return runCacheActivations(args, config);
  return runTraining(args, config);
}
