#pragma once
// What the feature browser shows for a trained SAE (workbench-ux.md "Feature dashboards"): per
// feature its density and max activation over a scan of the run's own token stream, a histogram
// of its nonzero activations, the top-k activating contexts (a window of tokens around the
// firing token) and the tokens its decoder row promotes and suppresses most (W_dec[f] . W_U).
// Torch-free and Qt-free (plain structs and std::vector) so the GUI includes it; compute() runs
// the model and the SAE with LibTorch in the .cpp. The GUI caches the result as
// <run>/features.json (toJson / fromJson).
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "analysis/Histogram.h"

namespace sae {

struct FeatureBrowserOptions {
  // Tokens to scan, rounded up to whole batches of store_batch_size rows of context_size tokens.
  int64_t tokens = 131072;
  int topK = 10;           // contexts kept per feature
  int contextBefore = 12;  // tokens shown before the firing token (within its row)
  int contextAfter = 4;    // and after it
  int logitCount = 10;     // top positive and top negative logit effects per feature
  int histogramBins = 40;  // equal-width bins over [min, max] of a feature's nonzero values
  bool operator==(const FeatureBrowserOptions& other) const;
};

// One top-activating context: a window of its row's tokens around the firing token.
struct FeatureContext {
  int64_t row = 0;       // row of the scan (0-based, in the order the token source gave them)
  int64_t position = 0;  // position of the firing token in its row
  double activation = 0;
  std::vector<int64_t> tokens;  // the window's token ids
  int firingIndex = 0;          // index of the firing token in `tokens`
};

struct LogitEffect {
  int64_t token = 0;
  double value = 0;  // (W_dec[f] . W_U)[token]
};

struct FeatureRecord {
  int64_t index = 0;
  int64_t firingCount = 0;  // scanned tokens where the activation is > 0
  double density = 0;       // firingCount / tokens scanned
  double maxActivation = 0;
  double meanActivation = 0;                // over the firing tokens
  double decoderNorm = 0;                   // ||W_dec[f]|| as saved
  HistogramBins histogram;                  // of the nonzero activations
  std::vector<FeatureContext> contexts;     // activation descending (ties: earlier first)
  std::vector<LogitEffect> positiveLogits;  // value descending
  std::vector<LogitEffect> negativeLogits;  // value ascending (most negative first)
};

// A progress report: (tokens scanned, tokens to scan, message); message lines also come from
// slow setup (the demo world is built on first use). Return false to cancel: compute() then
// throws std::runtime_error("feature browser: cancelled") at the next batch (setup lines are
// not cancellation points: the demo world's build runs to its end).
using FeatureBrowserProgress =
    std::function<bool(int64_t done, int64_t total, const std::string& message)>;

class FeatureBrowserData {
 public:
  // Reads runDir/config.json and the SAE of runDir/final (else the checkpoint with the most
  // tokens), rebuilds the model and token stream the way training did
  // (ActivationSourceFactory), scans options.tokens tokens through model and SAE and collects
  // every FeatureRecord. The weights are used as saved: a run that normalised its activations
  // saves them with the factor folded in (SaeFolder::save), so they take the model's own
  // activations; only a folder whose cfg.json says they expect normalised activations
  // (normalize_activations "expected_average_only_in", as SAELens writes it) gets the factor
  // estimated on the first batch as ActivationStore does (sqrt(d_in) / mean row norm; the run's
  // own factor came from its first buffer, so the two differ a little). Throws std::runtime_error
  // (or ConfigError) naming the folder or file and what to do: no config, no weights, a run on
  // synthetic or cached activations (there are no tokens to show), shapes that do not match.
  static FeatureBrowserData compute(const std::string& runDir,
                                    const FeatureBrowserOptions& options = {},
                                    const FeatureBrowserProgress& progress = {});

  // The folder whose weights compute() reads: runDir/final, else checkpoints/<most tokens>.
  static std::string weightsFolderFor(const std::string& runDir);
  // runDir/features.json.
  static std::string cachePath(const std::string& runDir);

  nlohmann::json toJson() const;
  // Throws std::runtime_error naming `sourceName` and the key when the JSON is not one of ours.
  static FeatureBrowserData fromJson(const nlohmann::json& json, const std::string& sourceName);
  // toJson() written atomically / read back (errors name the file).
  void save(const std::string& path) const;
  static FeatureBrowserData load(const std::string& path);
  // Whether this (e.g. cached) result was computed from the weights runDir has now (same file,
  // size and modification time) with the same options.
  bool isCurrentFor(const std::string& runDir, const FeatureBrowserOptions& options) const;

  // The text of one token for display: the tokenizer's piece, "<id>" without a tokenizer.
  std::string tokenText(int64_t id) const;
  // A context's tokens joined as text (what the search box matches).
  std::string contextText(const FeatureContext& context) const;

  // Where it came from.
  std::string runDir;
  std::string weightsFile;  // sae_weights.safetensors that was read
  int64_t weightsBytes = 0;
  int64_t weightsModified = 0;  // seconds since the epoch
  std::string modelName, datasetPath, hookPoint;
  int64_t contextSize = 0;
  int64_t dIn = 0;
  int64_t tokensScanned = 0;
  std::optional<double> estimatedActivationScale;  // set only when it had to be estimated
  std::string scanNote;   // why the scan stopped early (the dataset ran out), else empty
  std::string logitNote;  // why there are no logit effects (hook not in the residual), else empty
  std::string tokenizerPath;  // empty: no tokenizer.json next to the model, ids shown as "<id>"
  FeatureBrowserOptions options;

  std::vector<std::string> vocabulary;  // token id -> display text (empty without a tokenizer)
  std::vector<FeatureRecord> features;  // index order
};

}  // namespace sae
