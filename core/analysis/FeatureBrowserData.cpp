#include "analysis/FeatureBrowserData.h"

#include <torch/torch.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <stdexcept>

#include "config/AtomicFile.h"
#include "config/ConfigError.h"
#include "config/RunConfig.h"
#include "data/ActivationSourceFactory.h"
#include "data/LanguageModelActivationSource.h"
#include "demo/DemoWorld.h"
#include "formats/Safetensors.h"
#include "formats/TokenizerDecoder.h"
#include "model/ModelLoader.h"

namespace fs = std::filesystem;

namespace sae {

namespace {

constexpr const char* kFormat = "sae-workbench-features";
constexpr int kFormatVersion = 1;
// Features per W_dec . W_U product: bounds the [chunk, d_vocab] matrix (a 50k vocabulary and
// 24k features at once would be 5 GB).
constexpr int64_t kLogitChunk = 256;

// The SAE's four weights as saved, float32 on the CPU.
struct SaeWeights {
  torch::Tensor W_enc, b_enc, W_dec, b_dec;
};

SaeWeights readWeights(const std::string& file, int64_t dIn) {
  const auto tensors = Safetensors::read(file);
  auto get = [&](const std::string& key) {
    for (const auto& [name, tensor] : tensors)
      if (name == key) return tensor.to(torch::kCPU, torch::kFloat32);
    throw std::runtime_error(file + " has no tensor '" + key +
                             "'; it is not an SAE that SAELens or SAE Workbench saved");
  };
  SaeWeights w{get("W_enc"), get("b_enc"), get("W_dec"), get("b_dec")};
  const int64_t dSae = w.W_enc.dim() == 2 ? w.W_enc.size(1) : -1;
  auto check = [&](const char* key, const torch::Tensor& t, std::vector<int64_t> expected) {
    if (t.sizes().vec() != expected) {
      std::ostringstream m;
      m << file << ": " << key << " has shape " << t.sizes() << ", expected "
        << c10::IntArrayRef(expected) << " (d_in " << dIn
        << " from config.json); the weights do not belong to this run's config";
      throw std::runtime_error(m.str());
    }
  };
  check("W_enc", w.W_enc, {dIn, dSae});
  check("b_enc", w.b_enc, {dSae});
  check("W_dec", w.W_dec, {dSae, dIn});
  check("b_dec", w.b_dec, {dIn});
  return w;
}

// Whether the saved weights still expect normalised activations. SaeFolder folds a run's factor
// into the weights (cfg.json: activation_norm_scaling_factor_folded, normalize_activations
// "none"); a folder that says "expected_average_only_in" (SAELens's name for weights trained on
// normalised activations), or true from an older writer, or a folder without cfg.json from a
// run that normalised, needs the factor applied to the activations here.
bool needsActivationScale(const std::string& weightsFolder, const RunConfig& config) {
  if (!config.normalize_activations) return false;
  const fs::path cfgPath = fs::path(weightsFolder) / "cfg.json";
  if (!fs::exists(cfgPath)) return true;
  std::ifstream in(cfgPath);
  const nlohmann::json cfg = nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
  if (cfg.is_discarded() || !cfg.is_object()) {
    throw std::runtime_error(cfgPath.string() + " is not a JSON object; repair or remove it");
  }
  const auto folded = cfg.find("activation_norm_scaling_factor_folded");
  if (folded != cfg.end() && !folded->is_null()) return false;
  const auto mode = cfg.find("normalize_activations");
  if (mode == cfg.end()) return true;
  if (mode->is_boolean()) return mode->get<bool>();
  return !(mode->is_string() && mode->get<std::string>() == "none");
}

// The same encode as Sae::encodeWithHiddenPre, without its training noise (noise_scale is a
// regulariser; the browser shows what the SAE computes). The Sae class is not used because its
// constructor draws an initialisation from torch's default generator, which a run training at
// the same time in the workbench draws its shuffles from.
torch::Tensor encode(const SaeWeights& w, const torch::Tensor& x, const RunConfig& config) {
  const torch::Tensor in = config.apply_b_dec_to_input ? x - w.b_dec : x;
  torch::Tensor acts = torch::relu(torch::matmul(in, w.W_enc) + w.b_enc);
  if (config.activation_fn == "tanh-relu") acts = torch::tanh(acts);
  return acts;
}

// Hooks whose values are added into (or are) the residual stream: there a decoder row is a
// direction W_U reads, so W_dec[f] . W_U is the feature's direct effect on the logits.
bool writesResidualStream(const std::string& hook) {
  for (const char* suffix : {"hook_resid_pre", "hook_resid_mid", "hook_resid_post", "hook_mlp_out",
                             "hook_attn_out", "hook_embed", "hook_pos_embed"}) {
    const std::string s(suffix);
    if (hook.size() >= s.size() && hook.compare(hook.size() - s.size(), s.size(), s) == 0 &&
        (hook.size() == s.size() || hook[hook.size() - s.size() - 1] == '.')) {
      return true;
    }
  }
  return false;
}

// A candidate context, identified by its token's index in the scan (row * context + position).
struct Candidate {
  float activation;
  int64_t token;
};

// "a ranks before b": higher activation, then the earlier token (deterministic ties).
bool ranksBefore(const Candidate& a, const Candidate& b) {
  return a.activation > b.activation || (a.activation == b.activation && a.token < b.token);
}

// The k best candidates of one feature: a min-heap whose top is the worst kept.
class TopK {
 public:
  explicit TopK(size_t k) : k_(k) {}
  void offer(const Candidate& c) {
    if (heap_.size() < k_) {
      heap_.push_back(c);
      std::push_heap(heap_.begin(), heap_.end(), ranksBefore);
    } else if (ranksBefore(c, heap_.front())) {
      std::pop_heap(heap_.begin(), heap_.end(), ranksBefore);
      heap_.back() = c;
      std::push_heap(heap_.begin(), heap_.end(), ranksBefore);
    }
  }
  std::vector<Candidate> sorted() const {
    std::vector<Candidate> out = heap_;
    std::sort(out.begin(), out.end(), ranksBefore);
    return out;
  }

 private:
  size_t k_;
  std::vector<Candidate> heap_;
};

int64_t modifiedTicks(const fs::path& file) {
  return static_cast<int64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                  fs::last_write_time(file).time_since_epoch())
                                  .count());
}

std::string modelFolderOf(const RunConfig& config) {
  if (DemoWorld::isDemoName(config.model_name)) {
    return DemoWorld(DemoWorld::defaultFolder()).modelFolder();
  }
  return ModelLoader::resolveFolder(config.model_name);
}

nlohmann::json optionsJson(const FeatureBrowserOptions& o) {
  return {{"tokens", o.tokens},
          {"top_k", o.topK},
          {"context_before", o.contextBefore},
          {"context_after", o.contextAfter},
          {"logit_count", o.logitCount},
          {"histogram_bins", o.histogramBins}};
}

void checkOptions(const FeatureBrowserOptions& o) {
  if (o.tokens < 1 || o.topK < 1 || o.contextBefore < 0 || o.contextAfter < 0 || o.logitCount < 1 ||
      o.histogramBins < 1) {
    throw std::invalid_argument(
        "feature browser options: tokens, top_k, logit_count and histogram_bins must be at least "
        "1, context_before and context_after at least 0; got " +
        optionsJson(o).dump());
  }
}

}  // namespace

bool FeatureBrowserOptions::operator==(const FeatureBrowserOptions& other) const {
  return tokens == other.tokens && topK == other.topK && contextBefore == other.contextBefore &&
         contextAfter == other.contextAfter && logitCount == other.logitCount &&
         histogramBins == other.histogramBins;
}

std::string FeatureBrowserData::cachePath(const std::string& runDir) {
  return (fs::path(runDir) / "features.json").string();
}

std::string FeatureBrowserData::weightsFolderFor(const std::string& runDir) {
  const fs::path run(runDir);
  if (fs::exists(run / "final" / "sae_weights.safetensors")) return (run / "final").string();
  // A run that was stopped (or is still training): its newest checkpoint.
  std::string best;
  long long bestTokens = -1;
  std::error_code ec;
  if (fs::is_directory(run / "checkpoints", ec)) {
    for (const auto& entry : fs::directory_iterator(run / "checkpoints", ec)) {
      const std::string name = entry.path().filename().string();
      if (name.empty() || !std::all_of(name.begin(), name.end(), ::isdigit)) continue;
      if (!fs::exists(entry.path() / "sae_weights.safetensors")) continue;
      const long long tokens = std::stoll(name);
      if (tokens > bestTokens) {
        bestTokens = tokens;
        best = entry.path().string();
      }
    }
  }
  if (best.empty()) {
    throw std::runtime_error("run folder '" + runDir +
                             "' has no SAE yet: neither final/sae_weights.safetensors nor a "
                             "checkpoints/<tokens>/sae_weights.safetensors; train it (or let it "
                             "reach its first checkpoint) first");
  }
  return best;
}

FeatureBrowserData FeatureBrowserData::compute(const std::string& runDir,
                                               const FeatureBrowserOptions& options,
                                               const FeatureBrowserProgress& progress) {
  checkOptions(options);
  torch::NoGradGuard noGrad;
  auto report = [&](int64_t done, int64_t total, const std::string& message) {
    if (progress && !progress(done, total, message)) {
      throw std::runtime_error("feature browser: cancelled");
    }
  };

  const fs::path configPath = fs::path(runDir) / "config.json";
  if (!fs::exists(configPath)) {
    throw std::runtime_error("'" + runDir +
                             "' is not a run folder: it has no config.json; choose a folder that "
                             "sae-train or the workbench wrote (config.json, final/, "
                             "checkpoints/)");
  }
  const RunConfig config = RunConfig::loadFile(configPath.string());
  const auto issues = config.validate();
  if (!issues.empty()) throw ConfigError(configPath.string(), issues);
  if (config.use_synthetic_activations || config.use_cached_activations) {
    throw std::runtime_error(
        "the run in '" + runDir + "' was trained on " +
        (config.use_synthetic_activations
             ? std::string("synthetic activations")
             : "cached activations (" + config.resolvedCachedActivationsPath() + ")") +
        ": there are no tokens to show contexts for; the feature browser needs a run on a "
        "language model and token dataset (model_name, dataset_path)");
  }

  FeatureBrowserData data;
  data.runDir = runDir;
  data.options = options;
  const std::string weightsFolder = weightsFolderFor(runDir);
  const fs::path weightsFile = fs::path(weightsFolder) / "sae_weights.safetensors";
  data.weightsFile = weightsFile.string();
  data.weightsBytes = static_cast<int64_t>(fs::file_size(weightsFile));
  data.weightsModified = modifiedTicks(weightsFile);
  const SaeWeights w = readWeights(data.weightsFile, config.d_in);
  const int64_t dSae = w.W_enc.size(1);
  const bool estimateScale = needsActivationScale(weightsFolder, config);

  report(0, 0, "Loading the model and the token dataset...");
  const auto source = std::dynamic_pointer_cast<LanguageModelActivationSource>(
      ActivationSourceFactory::create(config, [&](const std::string& line) {
        // Passed on only: a cancel thrown here would abort the demo world's build midway.
        if (progress) progress(0, 0, line);
      }));
  if (!source) {
    throw std::runtime_error("the run in '" + runDir +
                             "' does not read a language model; the feature browser needs one");
  }
  const auto& model = *source->model();
  data.modelName = config.model_name;
  data.datasetPath = config.dataset_path;
  data.hookPoint = source->hookPoint();
  data.dIn = config.d_in;
  data.contextSize = source->tokens()->contextSize();

  const std::string modelFolder = modelFolderOf(config);
  const fs::path tokenizerPath = fs::path(modelFolder) / "tokenizer.json";
  const int64_t dVocab = model.config().d_vocab;
  if (fs::exists(tokenizerPath)) {
    data.tokenizerPath = tokenizerPath.string();
    const TokenizerDecoder decoder = TokenizerDecoder::load(data.tokenizerPath);
    data.vocabulary.reserve(static_cast<size_t>(dVocab));
    // A model may have more embedding rows than the tokenizer has tokens (padded vocabularies).
    for (int64_t id = 0; id < dVocab; ++id) {
      std::string text = "<" + std::to_string(id) + ">";
      try {
        if (id < decoder.vocabSize()) text = decoder.tokenText(id);
      } catch (const std::runtime_error&) {
        // An id the tokenizer has no token for (a gap in its vocabulary): shown as "<id>".
      }
      data.vocabulary.push_back(std::move(text));
    }
  }

  // ---- the scan
  const int64_t rowsPerBatch = config.store_batch_size;
  const int64_t context = data.contextSize;
  const int64_t batchTokens = rowsPerBatch * context;
  const int64_t batches = (options.tokens + batchTokens - 1) / batchTokens;
  const int64_t total = batches * batchTokens;
  std::vector<int64_t> allTokens;
  allTokens.reserve(static_cast<size_t>(total));
  // Per feature: firing count, sum and max of the activations, the nonzero values (for the
  // histogram) and the best contexts, all gathered in one pass over each batch's activations.
  std::vector<int64_t> firing(static_cast<size_t>(dSae), 0);
  std::vector<double> sums(static_cast<size_t>(dSae), 0.0);
  std::vector<float> maxima(static_cast<size_t>(dSae), 0.0f);
  std::vector<TopK> top(static_cast<size_t>(dSae), TopK(static_cast<size_t>(options.topK)));
  std::vector<std::vector<float>> values(static_cast<size_t>(dSae));
  double scale = 1.0;
  for (int64_t b = 0; b < batches; ++b) {
    report(b * batchTokens, total, "");
    std::vector<int64_t> rows;
    try {
      rows = source->tokens()->nextRows(rowsPerBatch);
    } catch (const std::exception& error) {
      if (b == 0) throw;
      // A small dataset: show what was scanned, and say why it is less than asked for.
      data.scanNote =
          "the scan stopped after " + std::to_string(b * batchTokens) + " tokens: " + error.what();
      break;
    }
    const int64_t offset = static_cast<int64_t>(allTokens.size());
    allTokens.insert(allTokens.end(), rows.begin(), rows.end());
    const torch::Tensor tokens =
        torch::from_blob(rows.data(), {rowsPerBatch, context}, torch::kInt64).clone();
    torch::Tensor x = source->activationsFor(tokens).to(torch::kCPU, torch::kFloat32);
    if (estimateScale) {
      if (!data.estimatedActivationScale) {
        // ActivationStore's estimate, on this first batch instead of the run's first buffer.
        const torch::Tensor meanNorm =
            at::linalg_vector_norm(x, 2, {-1}, false, c10::nullopt).mean();
        const torch::Tensor factor = meanNorm.reciprocal() * std::sqrt(double(config.d_in));
        data.estimatedActivationScale = static_cast<double>(factor.item<float>());
        scale = *data.estimatedActivationScale;
      }
      x = x * scale;
    }
    // [d_sae, batch tokens]: each feature's activations contiguous, so one loop per feature
    // does the counts, sums, maxima, histogram values and top-k (torch reductions and topk along
    // the token axis of [tokens, d_sae] cost 6 s of a 27 s demo scan; this loop under 1 s).
    const torch::Tensor byFeature = encode(w, x, config).t().contiguous();
    const float* p = byFeature.data_ptr<float>();
    const int64_t n = byFeature.size(1);
    for (int64_t f = 0; f < dSae; ++f) {
      const size_t fi = static_cast<size_t>(f);
      auto& out = values[fi];
      TopK& best = top[fi];
      const float* row = p + f * n;
      for (int64_t i = 0; i < n; ++i) {
        const float v = row[i];
        if (!(v > 0)) continue;
        ++firing[fi];
        sums[fi] += v;
        maxima[fi] = std::max(maxima[fi], v);
        out.push_back(v);
        best.offer({v, offset + i});
      }
    }
  }
  data.tokensScanned = static_cast<int64_t>(allTokens.size());
  report(data.tokensScanned, total, "Logit effects...");

  // ---- per-feature records
  const torch::Tensor decoderNorms =
      at::linalg_vector_norm(w.W_dec, 2, {1}, false, c10::nullopt).contiguous();
  data.features.resize(static_cast<size_t>(dSae));
  const auto normsA = decoderNorms.accessor<float, 1>();
  for (int64_t f = 0; f < dSae; ++f) {
    FeatureRecord& r = data.features[static_cast<size_t>(f)];
    r.index = f;
    const size_t fi = static_cast<size_t>(f);
    r.firingCount = firing[fi];
    r.density = data.tokensScanned > 0 ? double(r.firingCount) / double(data.tokensScanned) : 0.0;
    r.maxActivation = maxima[fi];
    r.meanActivation = r.firingCount > 0 ? sums[fi] / double(r.firingCount) : 0.0;
    r.decoderNorm = normsA[f];
    auto& v = values[static_cast<size_t>(f)];
    if (!v.empty()) {
      r.histogram =
          Histogram::fixedBins(std::vector<double>(v.begin(), v.end()), options.histogramBins);
    }
    std::vector<float>().swap(v);
    for (const Candidate& c : top[static_cast<size_t>(f)].sorted()) {
      FeatureContext ctx;
      ctx.row = c.token / context;
      ctx.position = c.token % context;
      ctx.activation = c.activation;
      const int64_t first = std::max<int64_t>(0, ctx.position - options.contextBefore);
      const int64_t last = std::min<int64_t>(context - 1, ctx.position + options.contextAfter);
      const auto rowStart = allTokens.begin() + ctx.row * context;
      ctx.tokens.assign(rowStart + first, rowStart + last + 1);
      ctx.firingIndex = static_cast<int>(ctx.position - first);
      r.contexts.push_back(std::move(ctx));
    }
  }

  // ---- logit effects: W_dec[f] . W_U
  torch::Tensor W_U;
  for (const auto& [name, tensor] : model.stateDict())
    if (name == "unembed.W_U") W_U = tensor.detach().to(torch::kCPU, torch::kFloat32);
  if (!writesResidualStream(data.hookPoint) || source->headIndex()) {
    data.logitNote = "no logit effects: " + data.hookPoint +
                     " is not a residual-stream hook, so W_dec . W_U has no direct meaning";
  } else if (!W_U.defined() || W_U.dim() != 2 || W_U.size(0) != config.d_in) {
    data.logitNote = "no logit effects: the model's unembedding does not read d_in = " +
                     std::to_string(config.d_in) + " dimensions";
  } else {
    const int64_t count = std::min<int64_t>(options.logitCount, W_U.size(1));
    for (int64_t start = 0; start < dSae; start += kLogitChunk) {
      const int64_t end = std::min(dSae, start + kLogitChunk);
      const torch::Tensor effects = torch::matmul(w.W_dec.slice(0, start, end), W_U);
      const auto [posV, posI] = effects.topk(count, 1, /*largest=*/true);
      const auto [negV, negI] = effects.topk(count, 1, /*largest=*/false);
      const auto pv = posV.accessor<float, 2>();
      const auto pi = posI.accessor<int64_t, 2>();
      const auto nv = negV.accessor<float, 2>();
      const auto ni = negI.accessor<int64_t, 2>();
      for (int64_t f = start; f < end; ++f) {
        FeatureRecord& r = data.features[static_cast<size_t>(f)];
        for (int64_t j = 0; j < count; ++j) {
          r.positiveLogits.push_back({pi[f - start][j], pv[f - start][j]});
          r.negativeLogits.push_back({ni[f - start][j], nv[f - start][j]});
        }
      }
    }
  }
  report(data.tokensScanned, total, "Done");
  return data;
}

std::string FeatureBrowserData::tokenText(int64_t id) const {
  if (id >= 0 && id < static_cast<int64_t>(vocabulary.size())) {
    return vocabulary[static_cast<size_t>(id)];
  }
  return "<" + std::to_string(id) + ">";
}

std::string FeatureBrowserData::contextText(const FeatureContext& context) const {
  std::string text;
  for (int64_t id : context.tokens)
    text += tokenText(id);
  return text;
}

bool FeatureBrowserData::isCurrentFor(const std::string& dir,
                                      const FeatureBrowserOptions& wanted) const {
  if (!(options == wanted)) return false;
  try {
    const fs::path file = fs::path(weightsFolderFor(dir)) / "sae_weights.safetensors";
    return fs::equivalent(file, weightsFile) &&
           static_cast<int64_t>(fs::file_size(file)) == weightsBytes &&
           modifiedTicks(file) == weightsModified;
  } catch (const std::exception&) {
    return false;  // no weights any more, or the recorded file is gone
  }
}

nlohmann::json FeatureBrowserData::toJson() const {
  nlohmann::json records = nlohmann::json::array();
  for (const FeatureRecord& r : features) {
    nlohmann::json contexts = nlohmann::json::array();
    for (const FeatureContext& c : r.contexts) {
      contexts.push_back({{"row", c.row},
                          {"position", c.position},
                          {"activation", c.activation},
                          {"tokens", c.tokens},
                          {"firing_index", c.firingIndex}});
    }
    auto logits = [](const std::vector<LogitEffect>& effects) {
      nlohmann::json out = nlohmann::json::array();
      for (const LogitEffect& e : effects)
        out.push_back({e.token, e.value});
      return out;
    };
    records.push_back(
        {{"index", r.index},
         {"firing_count", r.firingCount},
         {"density", r.density},
         {"max_activation", r.maxActivation},
         {"mean_activation", r.meanActivation},
         {"decoder_norm", r.decoderNorm},
         {"histogram", {{"edges", r.histogram.edges}, {"counts", r.histogram.counts}}},
         {"contexts", contexts},
         {"positive_logits", logits(r.positiveLogits)},
         {"negative_logits", logits(r.negativeLogits)}});
  }
  return {{"format", kFormat},
          {"version", kFormatVersion},
          {"run_dir", runDir},
          {"weights_file", weightsFile},
          {"weights_bytes", weightsBytes},
          {"weights_modified", weightsModified},
          {"model_name", modelName},
          {"dataset_path", datasetPath},
          {"hook_point", hookPoint},
          {"context_size", contextSize},
          {"d_in", dIn},
          {"tokens_scanned", tokensScanned},
          {"estimated_activation_scale", estimatedActivationScale
                                             ? nlohmann::json(*estimatedActivationScale)
                                             : nlohmann::json(nullptr)},
          {"scan_note", scanNote},
          {"logit_note", logitNote},
          {"tokenizer_path", tokenizerPath},
          {"options", optionsJson(options)},
          {"vocabulary", vocabulary},
          {"features", records}};
}

FeatureBrowserData FeatureBrowserData::fromJson(const nlohmann::json& json,
                                                const std::string& sourceName) {
  if (!json.is_object() || json.value("format", std::string()) != kFormat) {
    throw std::runtime_error(sourceName + " is not a feature browser file (no \"format\": \"" +
                             kFormat + "\")");
  }
  if (json.value("version", nlohmann::json()) != kFormatVersion) {
    throw std::runtime_error(sourceName + " has version " +
                             json.value("version", nlohmann::json()).dump() +
                             ", this app reads version " + std::to_string(kFormatVersion) +
                             "; delete it to compute it again");
  }
  try {
    FeatureBrowserData d;
    d.runDir = json.at("run_dir").get<std::string>();
    d.weightsFile = json.at("weights_file").get<std::string>();
    d.weightsBytes = json.at("weights_bytes").get<int64_t>();
    d.weightsModified = json.at("weights_modified").get<int64_t>();
    d.modelName = json.at("model_name").get<std::string>();
    d.datasetPath = json.at("dataset_path").get<std::string>();
    d.hookPoint = json.at("hook_point").get<std::string>();
    d.contextSize = json.at("context_size").get<int64_t>();
    d.dIn = json.at("d_in").get<int64_t>();
    d.tokensScanned = json.at("tokens_scanned").get<int64_t>();
    if (!json.at("estimated_activation_scale").is_null()) {
      d.estimatedActivationScale = json.at("estimated_activation_scale").get<double>();
    }
    d.scanNote = json.at("scan_note").get<std::string>();
    d.logitNote = json.at("logit_note").get<std::string>();
    d.tokenizerPath = json.at("tokenizer_path").get<std::string>();
    const auto& o = json.at("options");
    d.options.tokens = o.at("tokens").get<int64_t>();
    d.options.topK = o.at("top_k").get<int>();
    d.options.contextBefore = o.at("context_before").get<int>();
    d.options.contextAfter = o.at("context_after").get<int>();
    d.options.logitCount = o.at("logit_count").get<int>();
    d.options.histogramBins = o.at("histogram_bins").get<int>();
    d.vocabulary = json.at("vocabulary").get<std::vector<std::string>>();
    for (const auto& f : json.at("features")) {
      FeatureRecord r;
      r.index = f.at("index").get<int64_t>();
      r.firingCount = f.at("firing_count").get<int64_t>();
      r.density = f.at("density").get<double>();
      r.maxActivation = f.at("max_activation").get<double>();
      r.meanActivation = f.at("mean_activation").get<double>();
      r.decoderNorm = f.at("decoder_norm").get<double>();
      r.histogram.edges = f.at("histogram").at("edges").get<std::vector<double>>();
      r.histogram.counts = f.at("histogram").at("counts").get<std::vector<int64_t>>();
      for (const auto& c : f.at("contexts")) {
        FeatureContext ctx;
        ctx.row = c.at("row").get<int64_t>();
        ctx.position = c.at("position").get<int64_t>();
        ctx.activation = c.at("activation").get<double>();
        ctx.tokens = c.at("tokens").get<std::vector<int64_t>>();
        ctx.firingIndex = c.at("firing_index").get<int>();
        if (ctx.firingIndex < 0 || ctx.firingIndex >= static_cast<int>(ctx.tokens.size())) {
          throw std::runtime_error("feature " + std::to_string(r.index) +
                                   ": firing_index outside its context");
        }
        r.contexts.push_back(std::move(ctx));
      }
      for (const auto& e : f.at("positive_logits"))
        r.positiveLogits.push_back({e.at(0).get<int64_t>(), e.at(1).get<double>()});
      for (const auto& e : f.at("negative_logits"))
        r.negativeLogits.push_back({e.at(0).get<int64_t>(), e.at(1).get<double>()});
      d.features.push_back(std::move(r));
    }
    return d;
  } catch (const nlohmann::json::exception& error) {
    throw std::runtime_error(sourceName + " is damaged (" + error.what() +
                             "); delete it to compute it again");
  } catch (const std::runtime_error& error) {
    throw std::runtime_error(sourceName + " is damaged (" + error.what() +
                             "); delete it to compute it again");
  }
}

void FeatureBrowserData::save(const std::string& path) const {
  AtomicFile::write(path, toJson().dump() + "\n");
}

FeatureBrowserData FeatureBrowserData::load(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read " + path);
  const nlohmann::json json = nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
  if (json.is_discarded()) {
    throw std::runtime_error(path + " is not valid JSON; delete it to compute it again");
  }
  return fromJson(json, path);
}

}  // namespace sae
