#include "bench/PipelineBenchmark.h"

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <functional>
#include <mutex>
#include <optional>
#include <random>
#include <stdexcept>
#include <thread>
#include <vector>

#include <torch/torch.h>
#include <nlohmann/json.hpp>

#include "bench/StepBenchmark.h"
#include "config/PresetLibrary.h"
#include "config/RunConfig.h"
#include "data/ActivationSourceFactory.h"
#include "data/ActivationStore.h"
#include "data/LanguageModelActivationSource.h"
#include "data/TokenSource.h"
#include "model/HookedTransformer.h"
#include "train/TorchSettings.h"
#include "train/Trainer.h"

namespace sae {

namespace {

using Clock = std::chrono::steady_clock;

double secondsBetween(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

// The gelu-1l-sized case. The notebook's context (1024 tokens) and SAE batch (4096), with d_sae
// 32 * 512 and a buffer of 2 x 4 rows x 1024 tokens per refill (the notebook's 32 x 16 rows
// would take minutes per refill here): two steps per refill, the first of which the next
// buffer's forward passes can overlap.
constexpr int64_t kGeluContext = 1024;
constexpr int64_t kGeluStoreBatch = 4;
constexpr int64_t kGeluBuffers = 4;  // n_batches_in_buffer: refills read 4 / 2 store batches
constexpr int64_t kGeluExpansion = 32;
// A trained SAE at the notebook's shape fires about this many latents per token; a fresh
// heuristic-init SAE fires half of them and would take the dense step (see StepBenchmark).
constexpr double kGeluTargetL0 = 64;

// Uniform random token ids: the gelu-1l-sized model has random weights, so real text would
// tell nothing more. Deterministic per seed, so every run reads the same stream.
class RandomTokenSource : public TokenSource {
 public:
  RandomTokenSource(int64_t vocab, int64_t context, uint64_t seed)
      : vocab_(vocab), context_(context), seed_(seed), engine_(seed) {}
  int64_t contextSize() const override { return context_; }
  std::vector<int64_t> nextRows(int64_t rows) override {
    if (!calls_.empty() && calls_.back().first == rows) {
      ++calls_.back().second;
    } else {
      calls_.emplace_back(rows, 1);
    }
    std::uniform_int_distribution<int64_t> token(0, vocab_ - 1);
    std::vector<int64_t> ids(static_cast<size_t>(rows * context_));
    for (auto& id : ids)
      id = token(engine_);
    return ids;
  }
  std::string describe() const override {
    return "uniform random tokens (vocab " + std::to_string(vocab_) + ", seed " +
           std::to_string(seed_) + ")";
  }
  std::vector<std::pair<int64_t, int64_t>> callHistory() const override { return calls_; }
  void replayCalls(const std::vector<std::pair<int64_t, int64_t>>& history) override {
    for (const auto& [rows, calls] : history)
      for (int64_t i = 0; i < calls; ++i)
        nextRows(rows);
  }

 private:
  int64_t vocab_, context_;
  uint64_t seed_;
  std::mt19937_64 engine_;
  std::vector<std::pair<int64_t, int64_t>> calls_;
};

struct ReadRecord {
  double start = 0, end = 0;  // seconds since the run's origin
  int64_t rows = 0;
  bool producer = false;  // on the store's producer thread (not the training thread)
};

// The model's forward passes, timed from the outside: a LanguageModelActivationSource (so the
// trainer still treats it as a language model: evaluations, prefetch rules) whose next() records
// when it ran and on which thread, optionally sets the producer's intra-op threads, and can keep
// the rows it returned for the step-only replay. The rows are kept by reference: the store only
// reads them (index_select), so keeping them costs no copy.
class TimedLanguageModelSource : public LanguageModelActivationSource {
 public:
  TimedLanguageModelSource(const LanguageModelActivationSource& from, int64_t storeBatchSize,
                           int producerThreads, bool keepRows)
      : LanguageModelActivationSource(from.model(), from.tokens(), from.hookPoint(),
                                      from.headIndex(), storeBatchSize, from.dIn()),
        trainingThread_(std::this_thread::get_id()),
        producerThreads_(producerThreads),
        keepRows_(keepRows) {}

  void startClock(Clock::time_point origin) { origin_ = origin; }

  torch::Tensor next(int64_t rows) override {
    const bool producer = std::this_thread::get_id() != trainingThread_;
    // The store gave the producer the trainer's thread count; a variant overrides it here, on
    // the producer's own thread (OpenMP's thread count is per thread).
    if (producer && producerThreads_ > 0) at::set_num_threads(producerThreads_);
    const auto start = Clock::now();
    torch::Tensor out = LanguageModelActivationSource::next(rows);
    const auto end = Clock::now();
    std::lock_guard<std::mutex> lock(mutex_);
    records_.push_back(
        {secondsBetween(origin_, start), secondsBetween(origin_, end), rows, producer});
    if (keepRows_) kept_.push_back(out);
    return out;
  }

  std::vector<ReadRecord> records() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return records_;
  }
  std::vector<torch::Tensor> keptRows() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return kept_;
  }

 private:
  std::thread::id trainingThread_;
  int producerThreads_;
  bool keepRows_;
  Clock::time_point origin_ = Clock::now();
  mutable std::mutex mutex_;
  std::vector<ReadRecord> records_;
  std::vector<torch::Tensor> kept_;
};

// The step-only source: hands out, in order, the rows a language-model run produced, with the
// language model's buffer semantics (shuffled by the store), so the store builds the same
// batches and the trainer runs the same steps without any forward pass.
class ReplaySource : public ActivationSource {
 public:
  ReplaySource(std::vector<torch::Tensor> rows, int64_t dIn) : rows_(std::move(rows)), dIn_(dIn) {}
  int64_t dIn() const override { return dIn_; }
  torch::Tensor next(int64_t rows) override {
    if (next_ >= rows_.size() || rows_[next_].size(0) != rows)
      throw std::runtime_error(
          "pipeline benchmark: the replayed run asks for other rows than the "
          "recorded run read");
    return rows_[next_++];
  }
  bool shufflesBuffers() const override { return true; }
  std::string describe() const override {
    return "replay of " + std::to_string(rows_.size()) + " recorded buffers";
  }
  StreamState saveState() const override { return {}; }
  void restoreState(const StreamState&) override {
    throw std::runtime_error("pipeline benchmark: a replay source cannot be restored");
  }

 private:
  std::vector<torch::Tensor> rows_;
  int64_t dIn_;
  size_t next_ = 0;
};

// When each step ended (progress events come right after a step and its prefetch launch) and
// which path it took.
class StepClock : public TrainingObserver {
 public:
  StepClock(Clock::time_point origin, Trainer*& trainer) : origin_(origin), trainer_(trainer) {}
  void onProgress(const ProgressEvent& event) override {
    if (static_cast<size_t>(event.step) >= ends_.size()) ends_.resize(event.step + 1, -1.0);
    ends_[event.step] = secondsBetween(origin_, Clock::now());
    if (trainer_) {
      const auto& step = trainer_->trainingStep();
      if (event.step >= 2 && step.lastWasSparse()) ++sparseSteps_;
      lastL0_ = step.l0();
    }
  }
  // Seconds from the run's origin to the end of `step` steps.
  double endOf(int64_t step) const {
    if (step < 0 || static_cast<size_t>(step) >= ends_.size() || ends_[step] < 0)
      throw std::logic_error("pipeline benchmark: no progress event for step " +
                             std::to_string(step));
    return ends_[step];
  }
  int64_t sparseSteps() const { return sparseSteps_; }
  double lastL0() const { return lastL0_; }

 private:
  Clock::time_point origin_;
  Trainer*& trainer_;
  std::vector<double> ends_;
  int64_t sparseSteps_ = 0;
  double lastL0_ = 0;
};

struct CaseSetup {
  PipelineCaseResult result;
  RunConfig config;
  // A fresh source at the start of the stream (the timed model, or nullptr for the replay).
  std::function<std::shared_ptr<LanguageModelActivationSource>()> makeModelSource;
  double bEnc = 0;  // shared encoder bias after init (calibrated L0), 0: as initialised
};

struct RunOutput {
  PipelineRunFigures figures;
  std::vector<ReadRecord> reads;
  std::vector<torch::Tensor> keptRows;
  std::vector<torch::Tensor> weights;
};

RunOutput runOnce(const CaseSetup& setup, const std::string& name, bool prefetch,
                  int producerThreads, bool keepRows, const std::vector<torch::Tensor>* replay) {
  const RunConfig& config = setup.config;
  const PipelineCaseResult& c = setup.result;
  // As TrainingRun: threads and seed, then the source, the store and the SAE.
  TorchSettings::setThreads(c.trainer_threads);
  TorchSettings::seed(static_cast<uint64_t>(config.seed));
  std::shared_ptr<TimedLanguageModelSource> timed;
  std::shared_ptr<ActivationSource> source;
  if (replay) {
    source = std::make_shared<ReplaySource>(*replay, config.d_in);
  } else {
    timed = std::make_shared<TimedLanguageModelSource>(
        *setup.makeModelSource(), config.store_batch_size,
        producerThreads == c.trainer_threads ? 0 : producerThreads, keepRows);
    source = timed;
  }
  auto store =
      std::make_shared<ActivationStore>(source, ActivationStoreOptions::fromConfig(config));
  auto sae = Trainer::makeSae(config);
  if (setup.bEnc != 0) {
    torch::NoGradGuard noGrad;
    sae->b_enc.fill_(setup.bEnc);
  }
  Trainer* trainerPointer = nullptr;
  const auto origin = Clock::now();
  StepClock clock(origin, trainerPointer);
  RunOutput out;
  {
    Trainer trainer(config, store, sae, /*outDir=*/"");
    trainerPointer = &trainer;
    trainer.setPrefetch(prefetch);
    trainer.addObserver(&clock);
    if (timed) timed->startClock(origin);
    if (!trainer.run()) throw std::runtime_error("pipeline benchmark: the run stopped early");
    out.figures.total_seconds = secondsBetween(origin, Clock::now());
    out.figures.prefetched_buffers = trainer.prefetchedBuffers();
    trainerPointer = nullptr;
  }
  // The producer may have set the process-wide default thread count for new threads.
  TorchSettings::setThreads(c.trainer_threads);
  for (const auto& [tensorName, tensor] : sae->namedTensors())
    out.weights.push_back(tensor.detach().clone());

  PipelineRunFigures& f = out.figures;
  f.name = name;
  f.prefetch = prefetch;
  f.producer_threads = replay ? 0 : producerThreads;
  const double windowStart = clock.endOf(1);
  f.seconds = clock.endOf(c.steps) - windowStart;
  f.tokens_per_s = static_cast<double>(c.window_steps * c.train_batch_size) / f.seconds;
  f.sparse_steps = clock.sparseSteps();
  f.last_l0 = clock.lastL0();
  double waits = 0;
  if (timed) {
    out.reads = timed->records();
    if (keepRows) out.keptRows = timed->keptRows();
    // Reads 0 and 1 fill the first buffer and the storage buffer during step 0, in every mode;
    // read 2 + j serves the refill at step (j + 1) * steps_per_refill.
    if (static_cast<int64_t>(out.reads.size()) != 2 + c.window_refills)
      throw std::logic_error("pipeline benchmark: expected " +
                             std::to_string(2 + c.window_refills) + " buffer reads, saw " +
                             std::to_string(out.reads.size()));
    int64_t rows = 0;
    for (size_t i = 2; i < out.reads.size(); ++i) {
      const ReadRecord& r = out.reads[i];
      ++f.reads;
      rows += r.rows;
      f.read_seconds += r.end - r.start;
      if (r.producer) {
        const int64_t consumer = static_cast<int64_t>(i - 1) * c.steps_per_refill;
        waits += std::max(0.0, r.end - clock.endOf(consumer));
      } else {
        waits += r.end - r.start;
      }
    }
    f.read_rows_per_s = f.read_seconds > 0 ? static_cast<double>(rows) / f.read_seconds : 0;
  }
  f.wait_seconds = waits;
  f.step_seconds = (f.seconds - waits) / static_cast<double>(c.window_steps);
  return out;
}

bool sameTensors(const std::vector<torch::Tensor>& a, const std::vector<torch::Tensor>& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (!torch::equal(a[i], b[i])) return false;
  return true;
}

// The four runs of one case and the ratios between them.
PipelineCaseResult measureCase(CaseSetup setup) {
  PipelineCaseResult& c = setup.result;
  RunConfig& config = setup.config;
  c.d_in = config.d_in;
  c.d_sae = config.derivedDSae();
  c.hook = config.resolvedHookPoint();
  c.train_batch_size = config.train_batch_size;
  c.context_size = config.context_size;
  c.store_batch_size = config.store_batch_size;
  c.n_batches_in_buffer = config.n_batches_in_buffer;
  c.rows_per_refill =
      (config.n_batches_in_buffer / 2) * config.store_batch_size * config.context_size;
  if (c.rows_per_refill % config.train_batch_size != 0)
    throw std::logic_error("pipeline benchmark: a refill must hold whole train batches");
  c.steps_per_refill = c.rows_per_refill / config.train_batch_size;
  if (c.steps_per_refill < 2)
    throw std::logic_error("pipeline benchmark: a refill must hold at least two train batches");
  c.steps = (c.window_refills + 1) * c.steps_per_refill;
  c.window_steps = c.steps - 1;
  // A budget of exactly these steps; the schedule's final decay would not fit it (and does not
  // change what a step costs).
  config.training_tokens = c.steps * config.train_batch_size;
  config.finetuning_tokens = 0;
  config.lr_decay_steps = 0;
  config.n_checkpoints = 0;
  const auto issues = config.validate();
  if (!issues.empty())
    throw std::logic_error("pipeline benchmark: invalid config for " + c.name + ": " +
                           issues.front().field + ": " + issues.front().message);

  // Rounds of the four runs, every other round in the opposite order (the machine's load
  // drifts); per mode the round with the shortest window counts, since other processes only
  // ever add time. The first run records the model's rows for the step-only replays.
  const int threads = c.trainer_threads;
  std::vector<torch::Tensor> recorded, weights;
  bool same = true;
  std::array<std::optional<RunOutput>, 4> best;  // on, on with 1 producer thread, off, step only
  std::array<std::vector<double>, 4> windows;
  auto keep = [&](size_t mode, RunOutput run) {
    if (weights.empty()) {
      weights = std::move(run.weights);
    } else {
      same = same && sameTensors(weights, run.weights);
    }
    run.weights.clear();
    windows[mode].push_back(run.figures.seconds);
    if (!best[mode] || run.figures.seconds < best[mode]->figures.seconds)
      best[mode] = std::move(run);
  };
  auto runMode = [&](size_t mode) {
    if (mode == 0) {
      RunOutput run = runOnce(setup, "prefetch on", true, threads, recorded.empty(), nullptr);
      if (recorded.empty()) recorded = std::move(run.keptRows);
      keep(0, std::move(run));
    } else if (mode == 1) {
      keep(1, runOnce(setup, "prefetch on, producer 1 thread", true, 1, false, nullptr));
    } else if (mode == 2) {
      keep(2, runOnce(setup, "prefetch off", false, threads, false, nullptr));
    } else {
      keep(3, runOnce(setup, "step only (replayed rows)", false, 0, false, &recorded));
    }
  };
  for (int round = 0; round < c.rounds; ++round)
    for (size_t i = 0; i < 4; ++i)
      runMode(round % 2 == 0 ? i : 3 - i);
  recorded.clear();
  c.same_weights = same;
  for (size_t mode = 0; mode < 4; ++mode) {
    best[mode]->figures.window_seconds_all = windows[mode];
    c.runs.push_back(best[mode]->figures);
  }
  const RunOutput& on = *best[0];
  const RunOutput& onOne = *best[1];
  const RunOutput& off = *best[2];
  const RunOutput& stepOnly = *best[3];

  // The model alone: every read of the prefetch-off run ran on the training thread with nothing
  // beside it.
  double seconds = 0;
  int64_t rows = 0;
  for (const auto& r : off.reads) {
    seconds += r.end - r.start;
    rows += r.rows;
  }
  c.lm_activations_per_s = seconds > 0 ? static_cast<double>(rows) / seconds : 0;
  const double stepOnlyRate = stepOnly.figures.tokens_per_s;
  c.ratio_prefetch_on = on.figures.tokens_per_s / stepOnlyRate;
  c.ratio_prefetch_on_1_thread = onOne.figures.tokens_per_s / stepOnlyRate;
  c.ratio_prefetch_off = off.figures.tokens_per_s / stepOnlyRate;
  c.hidden_fraction =
      on.figures.read_seconds > 0 ? 1.0 - on.figures.wait_seconds / on.figures.read_seconds : 0;
  c.effective_hidden_fraction =
      (off.figures.seconds - on.figures.seconds) / off.figures.read_seconds;
  c.effective_hidden_fraction_1_thread =
      (off.figures.seconds - onOne.figures.seconds) / off.figures.read_seconds;
  return c;
}

// The encoder bias at which about targetL0 latents fire per row of x (the SAE as makeSae builds
// it from the config's seed), as StepBenchmark calibrates its SAE.
double calibratedEncoderBias(const RunConfig& config, const torch::Tensor& x, double targetL0) {
  TorchSettings::seed(static_cast<uint64_t>(config.seed));
  auto sae = Trainer::makeSae(config);
  torch::NoGradGuard noGrad;
  torch::Tensor input = x;
  if (config.apply_b_dec_to_input) input = input - sae->b_dec;
  const torch::Tensor pre = torch::mm(input, sae->W_enc).flatten();
  const int64_t keep = std::max<int64_t>(1, static_cast<int64_t>(targetL0 * x.size(0)));
  return -std::get<0>(torch::topk(pre, keep)).min().item<double>();
}

std::string loadAverage() {
  std::ifstream file("/proc/loadavg");
  std::string one, five, fifteen;
  if (!(file >> one >> five >> fifteen)) return "unknown";
  return one + " " + five + " " + fifteen;
}

nlohmann::ordered_json toJson(const PipelineCaseResult& c) {
  nlohmann::ordered_json j;
  j["name"] = c.name;
  j["model"] = c.model;
  j["hook"] = c.hook;
  j["d_in"] = c.d_in;
  j["d_sae"] = c.d_sae;
  j["train_batch_size"] = c.train_batch_size;
  j["context_size"] = c.context_size;
  j["store_batch_size"] = c.store_batch_size;
  j["n_batches_in_buffer"] = c.n_batches_in_buffer;
  j["rows_per_refill"] = c.rows_per_refill;
  j["steps_per_refill"] = c.steps_per_refill;
  j["steps"] = c.steps;
  j["window_steps"] = c.window_steps;
  j["window_refills"] = c.window_refills;
  j["calibrated_l0"] = c.calibrated_l0;
  j["trainer_threads"] = c.trainer_threads;
  j["rounds"] = c.rounds;
  j["setup_seconds"] = c.setup_seconds;
  auto& runs = j["runs"] = nlohmann::ordered_json::array();
  for (const auto& r : c.runs) {
    nlohmann::ordered_json o;
    o["name"] = r.name;
    o["prefetch"] = r.prefetch;
    o["producer_threads"] = r.producer_threads;
    o["total_seconds"] = r.total_seconds;
    o["window_seconds"] = r.seconds;
    o["tokens_per_s"] = r.tokens_per_s;
    o["prefetched_buffers"] = r.prefetched_buffers;
    o["model_reads"] = r.reads;
    o["model_read_seconds"] = r.read_seconds;
    o["model_read_rows_per_s"] = r.read_rows_per_s;
    o["wait_seconds"] = r.wait_seconds;
    o["step_seconds"] = r.step_seconds;
    o["sparse_steps"] = r.sparse_steps;
    o["last_l0"] = r.last_l0;
    o["window_seconds_all_rounds"] = r.window_seconds_all;
    runs.push_back(o);
  }
  j["lm_activations_per_s"] = c.lm_activations_per_s;
  j["ratio_prefetch_on"] = c.ratio_prefetch_on;
  j["ratio_prefetch_on_1_thread"] = c.ratio_prefetch_on_1_thread;
  j["ratio_prefetch_off"] = c.ratio_prefetch_off;
  const double stepRate = c.runs.back().tokens_per_s;
  j["ratio_bound_serial"] = 1.0 / (1.0 + stepRate / c.lm_activations_per_s);
  j["ratio_bound_spare_cores"] = std::min(1.0, c.lm_activations_per_s / stepRate);
  j["hidden_fraction"] = c.hidden_fraction;
  j["effective_hidden_fraction"] = c.effective_hidden_fraction;
  j["effective_hidden_fraction_1_thread"] = c.effective_hidden_fraction_1_thread;
  j["same_weights"] = c.same_weights;
  return j;
}

void print(const PipelineCaseResult& c) {
  std::printf("\n%s: %s\n", c.name.c_str(), c.model.c_str());
  std::printf(
      "  SAE %lld -> %lld at %s, batch %lld; context %lld, store batch %lld rows, "
      "n_batches_in_buffer %lld\n",
      static_cast<long long>(c.d_in), static_cast<long long>(c.d_sae), c.hook.c_str(),
      static_cast<long long>(c.train_batch_size), static_cast<long long>(c.context_size),
      static_cast<long long>(c.store_batch_size), static_cast<long long>(c.n_batches_in_buffer));
  std::printf(
      "  %lld steps per run; a refill is %lld rows = %lld steps; timed window: steps 2-%lld "
      "(%lld steps, %lld refills)%s\n",
      static_cast<long long>(c.steps), static_cast<long long>(c.rows_per_refill),
      static_cast<long long>(c.steps_per_refill), static_cast<long long>(c.steps),
      static_cast<long long>(c.window_steps), static_cast<long long>(c.window_refills),
      c.calibrated_l0 > 0
          ? ("; encoder bias set for L0 " + std::to_string(static_cast<int>(c.calibrated_l0)))
                .c_str()
          : "");
  std::printf(
      "  setup %.1f s; trainer %d intra-op threads; each run %d time%s, the shortest window "
      "counts\n",
      c.setup_seconds, c.trainer_threads, c.rounds, c.rounds == 1 ? "" : "s");
  std::printf("  %-30s %8s %9s %5s %8s %9s %7s %8s %6s %6s  %s\n", "run", "window s", "tokens/s",
              "reads", "model s", "model r/s", "wait s", "step ms", "sparse", "L0 end",
              "all windows s");
  for (const auto& r : c.runs) {
    std::string all;
    for (const double w : r.window_seconds_all) {
      char text[32];
      std::snprintf(text, sizeof text, "%s%.2f", all.empty() ? "" : " ", w);
      all += text;
    }
    std::printf("  %-30s %8.2f %9.0f %5lld %8.2f %9.0f %7.2f %8.1f %6lld %6.1f  %s\n",
                r.name.c_str(), r.seconds, r.tokens_per_s, static_cast<long long>(r.reads),
                r.read_seconds, r.read_rows_per_s, r.wait_seconds, r.step_seconds * 1000.0,
                static_cast<long long>(r.sparse_steps), r.last_l0, all.c_str());
  }
  const double stepRate = c.runs.back().tokens_per_s;
  std::printf(
      "  model alone (prefetch-off reads): %.0f activations/s; SAE steps alone: %.0f "
      "tokens/s\n",
      c.lm_activations_per_s, stepRate);
  // What the ratio can be at best: the model's work added to the steps' (no overlap, or two
  // sides sharing the same cores perfectly), or running entirely beside them on cores of its own.
  std::printf(
      "  bounds on end-to-end / step-only: %.3f (model and steps one after the other), %.3f "
      "(model wholly beside the steps on spare cores: min(1, model / steps))\n",
      1.0 / (1.0 + stepRate / c.lm_activations_per_s),
      std::min(1.0, c.lm_activations_per_s / stepRate));
  std::printf(
      "  end-to-end / step-only: %.3f prefetch on, %.3f producer 1 thread, %.3f prefetch off "
      "(goal >= 0.90)\n",
      c.ratio_prefetch_on, c.ratio_prefetch_on_1_thread, c.ratio_prefetch_off);
  std::printf(
      "  model time hidden by the prefetch: %.1f%% of the producer's reads (1 - wait / read); "
      "wall time saved = %.1f%% (producer 1 thread: %.1f%%) of the model's own time\n",
      100.0 * c.hidden_fraction, 100.0 * c.effective_hidden_fraction,
      100.0 * c.effective_hidden_fraction_1_thread);
  std::printf("  same SAE weights after every run: %s (%lld window steps)\n",
              c.same_weights ? "yes" : "NO", static_cast<long long>(c.window_steps));
  std::fflush(stdout);
}

}  // namespace

PipelineCaseResult PipelineBenchmark::measureDemo(int64_t refills, int rounds) {
  CaseSetup setup;
  PipelineCaseResult& c = setup.result;
  c.name = "demo";
  c.window_refills = refills;
  c.rounds = rounds;
  c.trainer_threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  setup.config = PresetLibrary::load("demo");
  const auto start = Clock::now();
  // The demo world (corpus, tokenizer, model) as `sae-train --preset demo` finds or builds it.
  auto probe = ActivationSourceFactory::create(
      setup.config, [](const std::string& line) { std::fprintf(stderr, "%s\n", line.c_str()); });
  c.setup_seconds = secondsBetween(start, Clock::now());
  c.model = "demo world model, " + probe->describe();
  const RunConfig config = setup.config;
  setup.makeModelSource = [config]() {
    auto source = ActivationSourceFactory::create(config);
    auto lm = std::dynamic_pointer_cast<LanguageModelActivationSource>(source);
    if (!lm) throw std::logic_error("pipeline benchmark: the demo source is not a language model");
    return lm;
  };
  return measureCase(std::move(setup));
}

PipelineCaseResult PipelineBenchmark::measureRandomGelu1l(int64_t refills, int rounds) {
  CaseSetup setup;
  PipelineCaseResult& c = setup.result;
  c.name = "gelu-1l-sized random model";
  c.window_refills = refills;
  c.trainer_threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  c.calibrated_l0 = kGeluTargetL0;
  c.rounds = rounds;
  RunConfig& config = setup.config;
  config = PresetLibrary::load("how-we-train-saes-gelu-1l");
  config.context_size = kGeluContext;
  config.store_batch_size = kGeluStoreBatch;
  config.n_batches_in_buffer = kGeluBuffers;
  config.expansion_factor = kGeluExpansion;
  config.d_sae = config.derivedDSae();
  TorchSettings::setThreads(c.trainer_threads);
  const auto start = Clock::now();
  TransformerConfig shape;  // the defaults are gelu-1l's shape
  auto model = std::make_shared<const HookedTransformer>(shape, /*seed=*/0);
  const std::string hook = config.resolvedHookPoint();
  const int64_t context = config.context_size, storeBatch = config.store_batch_size,
                dIn = config.d_in, vocab = shape.d_vocab;
  auto makeSource = [=](uint64_t tokenSeed, int64_t rowsPerForward) {
    return std::make_shared<LanguageModelActivationSource>(
        model, std::make_shared<RandomTokenSource>(vocab, context, tokenSeed), hook, std::nullopt,
        rowsPerForward, dIn);
  };
  // Calibration activations (two token rows) from another token stream than the runs read.
  const torch::Tensor sample = makeSource(/*tokenSeed=*/7, 2)->next(2 * context);
  setup.bEnc = calibratedEncoderBias(config, sample, kGeluTargetL0);
  c.setup_seconds = secondsBetween(start, Clock::now());
  setup.makeModelSource = [makeSource, storeBatch]() {
    return makeSource(/*tokenSeed=*/1, storeBatch);
  };
  c.model =
      "random-weight HookedTransformer of gelu-1l's shape, " + setup.makeModelSource()->describe();
  return measureCase(std::move(setup));
}

int PipelineBenchmark::runCommandLine(bool json) {
  const auto start = Clock::now();
  const std::string loadBefore = loadAverage();
  if (!json) {
    std::printf(
        "Pipeline benchmark (LibTorch %s, %u hardware threads, load %s): Trainer::run with the "
        "language model's\nforward passes on the store's producer thread (prefetch on), on the "
        "training thread (off), and the\nsame steps on the recorded rows without the model "
        "(step only). Window: all steps but the first.\n",
        TORCH_VERSION, std::thread::hardware_concurrency(), loadBefore.c_str());
    std::fflush(stdout);
  }
  std::vector<PipelineCaseResult> cases;
  cases.push_back(measureDemo());
  if (!json) print(cases.back());
  cases.push_back(measureRandomGelu1l());
  if (!json) print(cases.back());
  const double seconds = secondsBetween(start, Clock::now());
  if (json) {
    nlohmann::ordered_json out;
    out["torch_version"] = TORCH_VERSION;
    out["hardware_threads"] = std::thread::hardware_concurrency();
    out["load_before"] = loadBefore;
    out["load_after"] = loadAverage();
    out["seconds"] = seconds;
    out["peak_rss_mb"] = StepBenchmark::peakRssMb();
    auto& list = out["cases"] = nlohmann::ordered_json::array();
    for (const auto& c : cases)
      list.push_back(toJson(c));
    std::printf("%s\n", out.dump(2).c_str());
    return 0;
  }
  std::printf("\nwhole benchmark %.0f s, peak RSS %.0f MB, load %s\n", seconds,
              StepBenchmark::peakRssMb(), loadAverage().c_str());
  return 0;
}

}  // namespace sae
