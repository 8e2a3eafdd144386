// sae-train: the headless trainer. Same Trainer as the GUI; only the listener differs.
//
//   sae-train (--config FILE | --preset NAME) [--set key=value]... [--out DIR] [--dry-run]
//   sae-train --resume RUN_DIR                  (continue a stopped or killed run)
//   sae-train sweep (--config FILE | --preset NAME) [--set key=value]... [--out DIR]
//             [--emit-slurm DIR [--nodes N] [--ranks-per-node M] [--partition P] [--time T]
//              [--cpus-per-task C] [--runs-dir RUNS]]
//   sae-train cache-activations (--config FILE | --preset NAME) [--set key=value]... --out DIR
//   sae-train --list-presets
//   sae-train --benchmark [--json]        (the SAE training step)
//   sae-train --benchmark-model [--json]  (the language model up to blocks.0.hook_mlp_out)
//   sae-train --benchmark-pipeline [--json]  (end-to-end training with the model in the loop)
//
// Exit codes: 0 done, 1 failure during training, 2 bad config or input, 130 interrupted
// (a checkpoint is saved first).
#include <chrono>
#include <csignal>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <functional>
#include <iostream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "ConsoleReporter.h"
#include "bench/ModelBenchmark.h"
#include "bench/PipelineBenchmark.h"
#include "bench/StepBenchmark.h"
#include "config/AtomicFile.h"
#include "config/ConfigError.h"
#include "config/PresetLibrary.h"
#include "config/RunConfig.h"
#include "config/SweepExpansion.h"
#include "data/ActivationCacheWriter.h"
#include "demo/DemoWorld.h"
#include "model/ModelLoader.h"
#include "train/SweepRun.h"
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
  explicit InterruptWatcher(std::function<void()> requestStop)
      : requestStop_(std::move(requestStop)) {}
  void onProgress(const sae::ProgressEvent&) override {
    if (gInterrupted) requestStop_();
  }

 private:
  std::function<void()> requestStop_;
};

void printUsage(std::FILE* out) {
  std::fprintf(
      out,
      "usage: sae-train (--config FILE | --preset NAME) [--set key=value]... [--out DIR] "
      "[--dry-run]\n"
      "       sae-train --resume RUN_DIR\n"
      "       sae-train sweep (--config FILE | --preset NAME) [--set key=value]... "
      "[--out DIR]\n"
      "                 [--emit-slurm DIR [--nodes N] [--ranks-per-node M] "
      "[--partition P]\n"
      "                  [--time T] [--cpus-per-task C] [--runs-dir RUNS]]\n"
      "       sae-train cache-activations (--config FILE | --preset NAME) [--set "
      "key=value]... --out DIR\n"
      "       sae-train --list-presets\n"
      "       sae-train --benchmark [--json]\n"
      "       sae-train --benchmark-model [--json]\n"
      "       sae-train --benchmark-pipeline [--json]\n"
      "\n"
      "Trains a sparse autoencoder with SAELens 1.5 semantics and writes the run to DIR:\n"
      "config.json, metrics.jsonl, checkpoints/<tokens>/ and final/ (SAELens layout).\n"
      "--resume continues RUN_DIR from its latest checkpoint with its own config.json,\n"
      "exactly as if it had never stopped.\n"
      "cache-activations runs the config's model up to the hook over the training tokens "
      "and\n"
      "writes SAELens's cache layout (DIR/0.safetensors, 1.safetensors, ...) for "
      "use_cached_activations.\n"
      "\n"
      "Sweeps (as SAELens): list values for SAE, loss, learning-rate or optimiser "
      "fields,\n"
      "e.g. \"l1_coefficient\": [2, 5, 10], \"lr\": [5e-5, 1e-4], train one SAE per "
      "combination\n"
      "(their Cartesian product, the last listed field in SAELens's field order varying "
      "fastest)\n"
      "from one activation stream. `--config FILE` with lists (or `sweep`, or --set "
      "key=[a,b])\n"
      "writes DIR/sweep.json and one run folder per SAE, named as SAELens names it:\n"
      "DIR/<model>_<hook>_<d_sae>_<field>_<value>[_<field>_<value>...]/ with config.json, "
      "metrics.jsonl,\n"
      "events, run.json, checkpoints/ and final/. Fields that define the activations "
      "(model,\n"
      "hook, dataset, context_size, batch sizes, training_tokens, seed, ...) cannot be "
      "lists.\n"
      "A sweep folder cannot be resumed as a whole; --resume DIR/<name> continues one "
      "SAE alone.\n"
      "\n"
      "sweep --emit-slurm DIR writes, instead of training, DIR/configs/<name>.json (one "
      "config\n"
      "per combination), DIR/logs/ and DIR/sweep.sbatch: a Slurm array job, task i "
      "training\n"
      "combination i with `sae-train --config` into RUNS/<name> (RUNS: --runs-dir, "
      "default\n"
      "DIR/runs; a requeued single-rank task with a checkpoint resumes it). Submit with `sbatch "
      "DIR/sweep.sbatch`.\n"
      "--nodes N / --ranks-per-node M (N*M > 1) make each task one data-parallel job "
      "of N*M\n"
      "ranks started by srun with MASTER_ADDR (first node), MASTER_PORT (29500 + task "
      "id),\n"
      "RANK=$SLURM_PROCID, LOCAL_RANK=$SLURM_LOCALID and WORLD_SIZE=$SLURM_NTASKS, as "
      "torchrun sets\n"
      "them. --partition, --time and --cpus-per-task become #SBATCH lines; set "
      "SAE_TRAIN in the\n"
      "job's environment when sae-train lives elsewhere on the cluster.\n"
      "\n"
      "Exit codes: 0 done, 1 training failed, 2 bad config or input, 130 interrupted.\n");
}

std::string timestamp() {
  std::time_t now = std::time(nullptr);
  char text[32];
  std::strftime(text, sizeof text, "%Y%m%d-%H%M%S", std::localtime(&now));
  return text;
}

struct SlurmOptions {
  std::string dir, runsDir, partition, time;
  int64_t nodes = 1, ranksPerNode = 1, cpusPerTask = 0;
};

struct Arguments {
  std::string configPath, preset, outDir, resumeDir;
  std::vector<std::string> overrides;
  bool cacheActivations = false;
  bool sweep = false;  // the `sweep` subcommand
  SlurmOptions slurm;
  bool dryRun = false, listPresets = false, benchmark = false, benchmarkModel = false,
       benchmarkPipeline = false, json = false, help = false;
};

// Throws ConfigError on an unknown or incomplete option.
Arguments parseArguments(int argc, char** argv) {
  Arguments args;
  auto value = [&](int& i, const std::string& option) -> std::string {
    if (i + 1 >= argc) throw sae::ConfigError("option " + option + " needs a value");
    return argv[++i];
  };
  auto count = [&](int& i, const std::string& option) -> int64_t {
    const std::string text = value(i, option);
    size_t used = 0;
    long long n = 0;
    try {
      n = std::stoll(text, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used != text.size() || n < 1)
      throw sae::ConfigError("option " + option + " needs a positive whole number, got '" + text +
                             "'");
    return n;
  };
  int first = 1;
  if (argc > 1 && std::string(argv[1]) == "cache-activations") {
    args.cacheActivations = true;
    first = 2;
  } else if (argc > 1 && std::string(argv[1]) == "sweep") {
    args.sweep = true;
    first = 2;
  }
  bool slurmDetail = false;  // a Slurm option given without --emit-slurm
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
    } else if (a == "--emit-slurm") {
      args.slurm.dir = value(i, a);
    } else if (a == "--runs-dir") {
      args.slurm.runsDir = value(i, a);
      slurmDetail = true;
    } else if (a == "--partition") {
      args.slurm.partition = value(i, a);
      slurmDetail = true;
    } else if (a == "--time") {
      args.slurm.time = value(i, a);
      slurmDetail = true;
    } else if (a == "--nodes") {
      args.slurm.nodes = count(i, a);
      slurmDetail = true;
    } else if (a == "--ranks-per-node") {
      args.slurm.ranksPerNode = count(i, a);
      slurmDetail = true;
    } else if (a == "--cpus-per-task") {
      args.slurm.cpusPerTask = count(i, a);
      slurmDetail = true;
    } else if (a == "--dry-run") {
      args.dryRun = true;
    } else if (a == "--list-presets") {
      args.listPresets = true;
    } else if (a == "--benchmark") {
      args.benchmark = true;
    } else if (a == "--benchmark-model") {
      args.benchmarkModel = true;
    } else if (a == "--benchmark-pipeline") {
      args.benchmarkPipeline = true;
    } else if (a == "--json") {
      args.json = true;
    } else if (a == "-h" || a == "--help") {
      args.help = true;
    } else {
      throw sae::ConfigError("unknown option '" + a + "'; run sae-train --help for the options");
    }
  }
  if (!args.slurm.dir.empty() && !args.sweep && !args.help)
    throw sae::ConfigError(
        "--emit-slurm belongs to the sweep command: sae-train sweep --config "
        "FILE --emit-slurm DIR");
  if (slurmDetail && args.slurm.dir.empty() && !args.help)
    throw sae::ConfigError(
        "--nodes, --ranks-per-node, --partition, --time, --cpus-per-task and --runs-dir go with "
        "--emit-slurm DIR");
  if (!args.slurm.dir.empty() && (!args.outDir.empty() || args.dryRun) && !args.help)
    throw sae::ConfigError(
        "--emit-slurm DIR writes a Slurm job instead of training: leave out --out and --dry-run "
        "(the runs go to --runs-dir, default DIR/runs)");
  if (!args.resumeDir.empty() && !args.help) {
    if (!args.configPath.empty() || !args.preset.empty() || !args.overrides.empty() ||
        !args.outDir.empty() || args.cacheActivations || args.dryRun || args.benchmark ||
        args.benchmarkModel || args.benchmarkPipeline || args.listPresets || args.sweep)
      throw sae::ConfigError(
          "--resume RUN_DIR takes no other options: the run continues with RUN_DIR/config.json "
          "in RUN_DIR");
    return args;
  }
  // The pipeline benchmark builds its own two setups (the demo preset, a gelu-1l-sized random
  // model): a config, a run option or another benchmark next to it would be silently ignored.
  if (args.benchmarkPipeline && !args.help &&
      (!args.configPath.empty() || !args.preset.empty() || !args.overrides.empty() ||
       !args.outDir.empty() || args.cacheActivations || args.sweep || args.dryRun ||
       args.listPresets || args.benchmark || args.benchmarkModel))
    throw sae::ConfigError(
        "--benchmark-pipeline takes only --json: it times its own setups (the demo preset and a "
        "gelu-1l-sized random model); run it alone, e.g. sae-train --benchmark-pipeline --json");
  if (!args.help && !args.listPresets && !args.benchmark && !args.benchmarkModel &&
      !args.benchmarkPipeline && args.configPath.empty() && args.preset.empty()) {
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
    if (args.dryRun || args.listPresets || args.benchmark || args.benchmarkModel ||
        args.benchmarkPipeline || args.json) {
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
    InterruptWatcher watcher([&run] { run->requestStop(); });
    run->addObserver(&console);
    run->addObserver(&watcher);
    // Data-parallel ranks other than 0 write no run folder (TrainingRun::outDir() is empty).
    if (!run->outDir().empty()) {
      console.onMessage("Run folder: " + run->outDir());
    } else {
      console.onMessage("Run folder: none on this rank (rank 0 writes it)");
    }
    if (config.use_synthetic_activations || config.use_cached_activations) {
      console.onMessage("CE loss evals skipped: no language model in this run");
    }
    std::signal(SIGINT, onSignal);
    std::signal(SIGTERM, onSignal);
    if (!run->run()) {
      if (run->outDir().empty()) {
        std::fprintf(stderr, "Interrupted at step %lld (rank 0 saved the checkpoint)\n",
                     static_cast<long long>(run->step()));
      } else {
        std::fprintf(stderr, "Interrupted at step %lld: checkpoint saved under %s/checkpoints\n",
                     static_cast<long long>(run->step()), run->outDir().c_str());
      }
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

// ---------------------------------------------------------------- sweeps

// The config as written (lists kept), with the --set overrides applied; for presets the file
// behind the name.
struct SweepSource {
  nlohmann::json object;
  std::string name, baseDir;
};

SweepSource loadSweepSource(const Arguments& args) {
  SweepSource source;
  source.name = args.preset.empty() ? args.configPath : "preset " + args.preset;
  const std::string path =
      args.preset.empty() ? args.configPath : sae::PresetLibrary::pathOf(args.preset);
  source.object = sae::RunConfig::readJsonFile(path, &source.baseDir);
  for (const auto& override : args.overrides)
    sae::SweepExpansion::applyOverride(source.object, override);
  return source;
}

// Whether the request trains (or emits) a sweep: the subcommand, or lists in the config file
// or in a --set. A config without lists takes the single-run path exactly as before.
bool isSweepRequest(const Arguments& args) {
  if (args.sweep) return true;
  if (!args.preset.empty() || args.configPath.empty()) {
    for (const auto& override : args.overrides) {
      const size_t equals = override.find('=');
      if (equals == std::string::npos) continue;
      const auto value =
          nlohmann::json::parse(override.substr(equals + 1), nullptr, /*allow_exceptions=*/false);
      if (!value.is_discarded() && value.is_array()) return true;
    }
    return false;
  }
  SweepSource source;
  source.object = sae::RunConfig::readJsonFile(args.configPath);
  for (const auto& override : args.overrides)
    sae::SweepExpansion::applyOverride(source.object, override);
  return sae::SweepExpansion::isSweep(source.object);
}

void printCombinations(const std::vector<sae::SweepCombination>& combinations) {
  std::string swept;
  for (const auto& [key, value] : combinations.front().values.items())
    swept += (swept.empty() ? "" : " x ") + key;
  std::printf("Sweep of %zu SAE%s%s:\n", combinations.size(), combinations.size() == 1 ? "" : "s",
              swept.empty() ? " (no list values)" : (" over " + swept).c_str());
  for (const auto& c : combinations) {
    std::string values;
    for (const auto& [key, value] : c.values.items())
      values += (values.empty() ? "" : ", ") + key + "=" + value.dump();
    std::printf("  [%zu] %s%s%s\n", c.index, c.folderName.c_str(), values.empty() ? "" : "  ",
                values.c_str());
  }
  std::fflush(stdout);
}

int runSweep(const Arguments& args, const SweepSource& source,
             std::vector<sae::SweepCombination> combinations) {
  std::unique_ptr<sae::SweepRun> sweep;
  const std::string outDir =
      args.outDir.empty() ? (fs::path("runs") / ("sweep-" + timestamp())).string() : args.outDir;
  const auto log = [](const std::string& line) {
    std::printf("%s\n", line.c_str());
    std::fflush(stdout);
  };
  try {
    if (fs::exists(fs::path(outDir) / sae::SweepRun::kManifestFile))
      throw sae::ConfigError(outDir +
                             " already holds a sweep (sweep.json): give a new --out folder");
    sweep = std::make_unique<sae::SweepRun>(std::move(combinations), outDir, source.object, log);
  } catch (const std::exception& error) {
    std::fprintf(stderr, "sae-train: %s\n", error.what());
    return kExitBadInput;
  }
  try {
    ConsoleReporter console(stdout);
    InterruptWatcher watcher([&sweep] { sweep->requestStop(); });
    sweep->addObserver(&console);
    sweep->addObserver(&watcher);
    console.onMessage("Sweep folder: " + outDir);
    std::signal(SIGINT, onSignal);
    std::signal(SIGTERM, onSignal);
    if (!sweep->run()) {
      std::fprintf(stderr,
                   "Interrupted at step %lld: a checkpoint of every SAE is saved under "
                   "%s/<name>/checkpoints\n",
                   static_cast<long long>(sweep->step()), outDir.c_str());
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

// A word for a bash script: single-quoted, with ' written as '\''.
std::string shellQuote(const std::string& text) {
  std::string quoted = "'";
  for (const char c : text)
    quoted += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return quoted + "'";
}

std::string absolutePath(const std::string& path) {
  std::error_code ec;
  const fs::path absolute = fs::absolute(path, ec);
  return (ec ? fs::path(path) : absolute).lexically_normal().string();
}

// The Slurm array job (issue 5 §5): task i trains combination i with the ordinary single-run
// command, so every task's folder is an ordinary run folder.
std::string slurmScript(const SlurmOptions& slurm, const std::string& sourceName,
                        const std::vector<sae::SweepCombination>& combinations,
                        const std::string& configsDir, const std::string& runsDir,
                        const std::string& logsDir, const std::string& trainer) {
  const int64_t ranks = slurm.nodes * slurm.ranksPerNode;
  std::ostringstream o;
  o << "#!/bin/bash\n"
    << "# Written by `sae-train sweep --emit-slurm` from " << sourceName << ": "
    << combinations.size() << " SAE" << (combinations.size() == 1 ? "" : "s")
    << ", one per array task"
    << (ranks > 1 ? ", each a job of " + std::to_string(ranks) + " data-parallel ranks" : "")
    << ".\n"
    << "# Submit with: sbatch " << absolutePath(slurm.dir) << "/sweep.sbatch\n"
    << "# Task i trains configs/<name i>.json into <runs>/<name i>"
    << (ranks > 1 ? " (a data-parallel run cannot be\n# resumed yet: a requeued task starts "
                    "again).\n"
                  : "; a requeued task whose run\n# folder holds a checkpoint continues it "
                    "with --resume.\n")
    << "#SBATCH --job-name=sae-sweep\n"
    << "#SBATCH --array=0-" << combinations.size() - 1 << "\n"
    << "#SBATCH --nodes=" << slurm.nodes << "\n"
    << "#SBATCH --ntasks-per-node=" << slurm.ranksPerNode << "\n";
  if (slurm.cpusPerTask > 0) o << "#SBATCH --cpus-per-task=" << slurm.cpusPerTask << "\n";
  if (!slurm.partition.empty()) o << "#SBATCH --partition=" << slurm.partition << "\n";
  if (!slurm.time.empty()) o << "#SBATCH --time=" << slurm.time << "\n";
  o << "#SBATCH --output=" << logsDir << "/%x-%A_%a.out\n"
    << "set -euo pipefail\n\n"
    << "SAE_TRAIN=\"${SAE_TRAIN:-" << trainer << "}\"\n"
    << "CONFIGS_DIR=" << shellQuote(configsDir) << "\n"
    << "RUNS_DIR=" << shellQuote(runsDir) << "\n"
    << "NAMES=(\n";
  for (const auto& c : combinations)
    o << "  " << shellQuote(c.folderName) << "\n";
  o << ")\n"
    << "NAME=\"${NAMES[$SLURM_ARRAY_TASK_ID]}\"\n"
    << "OUT=\"$RUNS_DIR/$NAME\"\n"
    << "if [ -f \"$OUT/final/sae_weights.safetensors\" ]; then\n"
    << "  echo \"$OUT has finished already\"\n"
    << "  exit 0\n"
    << "fi\n"
    << "ARGS=(--config \"$CONFIGS_DIR/$NAME.json\" --out \"$OUT\")\n";
  if (ranks == 1) {
    o << "if [ -f \"$OUT/run.json\" ] &&\n"
      << "   compgen -G \"$OUT/checkpoints/*/training_state.safetensors\" > /dev/null; then\n"
      << "  ARGS=(--resume \"$OUT\")\n"
      << "fi\n";
  }
  o << "mkdir -p \"$RUNS_DIR\"\n";
  if (ranks > 1) {
    o << "\n# torchrun's rendezvous variables, read by sae-train's data-parallel training.\n"
      // No pipe into head: under pipefail scontrol's SIGPIPE would end the script.
      << "mapfile -t NODES < <(scontrol show hostnames \"$SLURM_JOB_NODELIST\")\n"
      << "MASTER_ADDR=\"${NODES[0]}\"\n"
      << "MASTER_PORT=\"${MASTER_PORT:-$((29500 + SLURM_ARRAY_TASK_ID % 20000))}\"\n"
      << "WORLD_SIZE=\"$SLURM_NTASKS\"\n"
      << "export MASTER_ADDR MASTER_PORT WORLD_SIZE\n"
      << "srun --kill-on-bad-exit=1 bash -c "
      << "'export RANK=\"$SLURM_PROCID\" LOCAL_RANK=\"$SLURM_LOCALID\"; exec \"$@\"' "
      << "sae-train-rank \"$SAE_TRAIN\" \"${ARGS[@]}\"\n";
  } else {
    o << "exec \"$SAE_TRAIN\" \"${ARGS[@]}\"\n";
  }
  return o.str();
}

int emitSlurm(const Arguments& args, const SweepSource& source,
              const std::vector<sae::SweepCombination>& combinations) {
  try {
    const SlurmOptions& slurm = args.slurm;
    const std::string dir = absolutePath(slurm.dir);
    const std::string runsDir =
        slurm.runsDir.empty() ? (fs::path(dir) / "runs").string() : absolutePath(slurm.runsDir);
    const std::string configsDir = (fs::path(dir) / "configs").string();
    const std::string logsDir = (fs::path(dir) / "logs").string();
    // #SBATCH lines are not shell: a blank would end the option.
    if (logsDir.find_first_of(" \t\n'\"") != std::string::npos)
      throw sae::ConfigError("--emit-slurm " + slurm.dir +
                             ": the folder's path holds a blank or a quote, which Slurm's "
                             "#SBATCH --output line cannot carry; choose another folder");
    std::error_code ec;
    std::string trainer = fs::read_symlink("/proc/self/exe", ec).string();
    if (ec || trainer.empty()) trainer = "sae-train";
    fs::create_directories(configsDir);
    fs::create_directories(logsDir);
    for (const auto& c : combinations)
      c.config.saveFile((fs::path(configsDir) / (c.folderName + ".json")).string());
    const std::string script =
        slurmScript(slurm, source.name, combinations, configsDir, runsDir, logsDir, trainer);
    const std::string scriptPath = (fs::path(dir) / "sweep.sbatch").string();
    sae::AtomicFile::write(scriptPath, script);
    fs::permissions(scriptPath, fs::perms::owner_exec | fs::perms::group_exec,
                    fs::perm_options::add, ec);
    std::printf("Wrote %zu config%s to %s/\n", combinations.size(),
                combinations.size() == 1 ? "" : "s", configsDir.c_str());
    std::printf(
        "Wrote %s (array 0-%zu%s); runs go to %s/<name>\n", scriptPath.c_str(),
        combinations.size() - 1,
        slurm.nodes * slurm.ranksPerNode > 1
            ? (", " + std::to_string(slurm.nodes * slurm.ranksPerNode) + " ranks each").c_str()
            : "",
        runsDir.c_str());
    std::printf("Submit with: sbatch %s\n", scriptPath.c_str());
    return kExitOk;
  } catch (const std::exception& error) {
    std::fprintf(stderr, "sae-train: sweep --emit-slurm: %s\n", error.what());
    return kExitBadInput;
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
    if (args.benchmarkPipeline) return sae::PipelineBenchmark::runCommandLine(args.json);
    if (!args.resumeDir.empty()) {
      if (sae::SweepRun::isSweepFolder(args.resumeDir))
        throw sae::ConfigError(
            args.resumeDir +
            " is a sweep folder (it holds sweep.json): resuming a whole sweep is not supported; "
            "continue one SAE with sae-train --resume " +
            (fs::path(args.resumeDir) / "<name>").string() +
            " (it then trains alone), or start the sweep again");
      return runTraining(args, config);
    }
    if (isSweepRequest(args)) {
      const SweepSource source = loadSweepSource(args);
      auto combinations = sae::SweepExpansion::expand(source.object, source.name, source.baseDir);
      // cache-activations needs the stream only, which every combination shares.
      if (args.cacheActivations) return runCacheActivations(args, combinations.front().config);
      printCombinations(combinations);
      if (!args.slurm.dir.empty()) return emitSlurm(args, source, combinations);
      if (args.dryRun) {
        const auto& first = combinations.front().config;
        std::printf("total steps: %lld (each SAE)\n", static_cast<long long>(first.totalSteps()));
        noteMissingInputs(first);
        std::printf("config is valid\n");
        return kExitOk;
      }
      return runSweep(args, source, std::move(combinations));
    }
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
