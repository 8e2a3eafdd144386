#include "demo/DemoWorld.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <vector>

#include <nlohmann/json.hpp>

#include "config/AtomicFile.h"
#include "demo/BpeTokenizer.h"
#include "demo/BpeTokenizerTrainer.h"
#include "demo/CorpusGenerator.h"
#include "demo/DemoModelTrainer.h"
#include "demo/NpyTokenFile.h"
#include "model/ModelLoader.h"

namespace sae {

namespace {

using nlohmann::json;
namespace fs = std::filesystem;

const char* const kFormat = "sae-workbench demo world";

// Holds an exclusive flock on <folder>/.lock for its lifetime.
class FolderLock {
 public:
  explicit FolderLock(const std::string& folder) {
    std::error_code ec;
    fs::create_directories(folder, ec);
    if (ec) {
      throw std::runtime_error("cannot create the demo-world folder '" + folder +
                               "': " + ec.message() + ". Check permissions or free space");
    }
    const std::string path = folder + "/.lock";
    fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd_ < 0) {
      throw std::runtime_error("cannot open '" + path + "': " + std::strerror(errno) +
                               ". Check the permissions of the demo-world folder");
    }
    while (::flock(fd_, LOCK_EX) != 0 && errno == EINTR) {
    }
  }
  ~FolderLock() {
    if (fd_ >= 0) ::close(fd_);  // closing releases the lock
  }
  FolderLock(const FolderLock&) = delete;
  FolderLock& operator=(const FolderLock&) = delete;

 private:
  int fd_ = -1;
};

json readJson(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return json();
  try {
    return json::parse(in);
  } catch (const json::exception&) {
    return json();
  }
}

double secondsSince(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

std::string fixed(double v, int digits) {
  std::ostringstream s;
  s.setf(std::ios::fixed);
  s.precision(digits);
  s << v;
  return s.str();
}

json modelOptionsJson(const DemoModelOptions& o) {
  return {{"d_model", o.dModel},
          {"d_mlp", o.dMlp},
          {"n_heads", o.nHeads},
          {"n_ctx", o.nCtx},
          {"steps", o.steps},
          {"batch_size", o.batchSize},
          {"lr", o.lr},
          {"warmup_steps", o.warmupSteps},
          {"min_lr_fraction", o.minLrFraction},
          {"held_out_fraction", o.heldOutFraction},
          {"eval_rows", o.evalRows},
          {"seed", o.seed}};
}

const char* const kModelFiles[] = {"config.json", "model.safetensors", "tokenizer.json"};

}  // namespace

std::string DemoWorld::defaultFolder() {
  const char* xdg = std::getenv("XDG_CACHE_HOME");
  // The XDG spec says relative values are invalid and must be ignored.
  if (xdg && xdg[0] == '/') return std::string(xdg) + "/sae-workbench/demo-world";
  const char* home = std::getenv("HOME");
  if (home && home[0] != '\0') return std::string(home) + "/.cache/sae-workbench/demo-world";
  throw std::runtime_error(
      "cannot find a cache folder for the demo world: neither XDG_CACHE_HOME (absolute) nor HOME "
      "is set. Set one of them");
}

DemoWorld::DemoWorld(std::string folder, DemoWorldOptions options)
    : folder_(std::move(folder)), options_(options) {
  while (folder_.size() > 1 && folder_.back() == '/')
    folder_.pop_back();
}

std::string DemoWorld::fileHash(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return {};
  uint64_t h = 0xcbf29ce484222325ULL;
  std::vector<char> buffer(1 << 16);
  while (in) {
    in.read(buffer.data(), static_cast<std::streamsize>(buffer.size()));
    const std::streamsize got = in.gcount();
    for (std::streamsize i = 0; i < got; ++i) {
      h ^= static_cast<unsigned char>(buffer[static_cast<size_t>(i)]);
      h *= 0x100000001b3ULL;
    }
  }
  static const char* hex = "0123456789abcdef";
  std::string out(16, '0');
  for (int i = 15; i >= 0; --i, h >>= 4)
    out[static_cast<size_t>(i)] = hex[h & 0xF];
  return out;
}

bool DemoWorld::isDataCurrent() const {
  const json m = readJson(manifestPath());
  if (!m.is_object()) return false;
  try {
    if (m.value("format", "") != kFormat || m.value("version", -1) != kVersion ||
        m.value("corpus_generator_version", -1) != CorpusGenerator::kVersion ||
        m.value("seed", uint64_t{0}) != options_.seed ||
        m.value("corpus_bytes_target", uint64_t{0}) != options_.corpusBytes ||
        m.value("vocab_size_target", -1) != options_.vocabSize) {
      return false;
    }
    const json& files = m.at("files");
    for (const std::string name : {"tokenizer.json", "tokens.npy"}) {
      const std::string path = folder_ + "/" + name;
      std::error_code ec;
      const auto size = fs::file_size(path, ec);
      if (ec || size != files.at(name).at("bytes").get<uint64_t>()) return false;
      if (fileHash(path) != files.at(name).at("fnv1a64").get<std::string>()) return false;
    }
  } catch (const json::exception&) {
    return false;
  }
  return true;
}

DemoWorldStats DemoWorld::stats() const {
  if (!isDataCurrent()) {
    throw std::runtime_error("the demo world in '" + folder_ +
                             "' is missing or out of date; build it first (DemoWorld::ensureData)");
  }
  const json m = readJson(manifestPath());
  const json& s = m.at("stats");
  DemoWorldStats out;
  out.documents = s.at("documents").get<int64_t>();
  out.corpusBytes = s.at("corpus_bytes").get<int64_t>();
  out.tokens = s.at("tokens").get<int64_t>();
  out.vocabSize = s.at("vocab_size").get<int>();
  out.bosTokenId = s.at("bos_token_id").get<int>();
  out.unigramEntropyNats = s.at("unigram_entropy_nats").get<double>();
  return out;
}

bool DemoWorld::ensureData(const std::function<void(const std::string&)>& log) {
  auto say = [&](const std::string& line) {
    if (log) log(line);
  };
  if (isDataCurrent()) return false;
  FolderLock lock(folder_);
  if (isDataCurrent()) return false;  // another process built it while we waited

  // The manifest goes first: from here until the new one is written the folder reads as stale.
  std::error_code ec;
  fs::remove(manifestPath(), ec);

  say("demo world: building in " + folder_);
  auto start = std::chrono::steady_clock::now();
  CorpusGenerator generator(options_.seed);
  const std::vector<std::string> docs = generator.generate(options_.corpusBytes);
  int64_t corpusBytes = 0;
  for (const auto& d : docs)
    corpusBytes += static_cast<int64_t>(d.size());
  say("demo world: corpus of " + std::to_string(docs.size()) + " documents, " +
      std::to_string(corpusBytes) + " bytes (" + fixed(secondsSince(start), 1) + " s)");

  start = std::chrono::steady_clock::now();
  BpeTokenizerTrainer trainer(options_.vocabSize);
  for (const auto& d : docs)
    trainer.addText(d);
  const BpeTokenizer tokenizer = trainer.train();
  AtomicFile::write(tokenizerPath(), tokenizer.toJson());
  say("demo world: tokenizer with " + std::to_string(tokenizer.vocabSize()) + " tokens (" +
      fixed(secondsSince(start), 1) + " s)");

  start = std::chrono::steady_clock::now();
  std::vector<int32_t> stream;
  stream.reserve(static_cast<size_t>(corpusBytes / 3));
  for (const auto& d : docs) {
    stream.push_back(tokenizer.endOfTextId());
    for (int64_t id : tokenizer.encode(d))
      stream.push_back(static_cast<int32_t>(id));
  }
  NpyTokenFile::write(tokensPath(), stream);

  std::vector<int64_t> counts(static_cast<size_t>(tokenizer.vocabSize()), 0);
  for (int32_t t : stream)
    ++counts[static_cast<size_t>(t)];
  double entropy = 0;
  const double total = static_cast<double>(stream.size());
  for (int64_t c : counts) {
    if (c > 0) entropy -= (c / total) * std::log(c / total);
  }
  say("demo world: " + std::to_string(stream.size()) + " tokens, unigram entropy " +
      fixed(entropy, 3) + " nats (" + fixed(secondsSince(start), 1) + " s)");

  json m;
  m["format"] = kFormat;
  m["version"] = kVersion;
  m["corpus_generator_version"] = CorpusGenerator::kVersion;
  m["seed"] = options_.seed;
  m["corpus_bytes_target"] = options_.corpusBytes;
  m["vocab_size_target"] = options_.vocabSize;
  m["stats"] = {
      {"documents", static_cast<int64_t>(docs.size())}, {"corpus_bytes", corpusBytes},
      {"tokens", static_cast<int64_t>(stream.size())},  {"vocab_size", tokenizer.vocabSize()},
      {"bos_token_id", tokenizer.endOfTextId()},        {"unigram_entropy_nats", entropy}};
  for (const std::string name : {"tokenizer.json", "tokens.npy"}) {
    const std::string path = folder_ + "/" + name;
    m["files"][name] = {{"bytes", static_cast<uint64_t>(fs::file_size(path))},
                        {"fnv1a64", fileHash(path)}};
  }
  AtomicFile::write(manifestPath(), m.dump(2) + "\n");
  return true;
}

bool DemoWorld::isModelCurrent() const {
  if (!isDataCurrent()) return false;
  const json m = readJson(modelManifestPath());
  const json data = readJson(manifestPath());
  if (!m.is_object()) return false;
  try {
    if (m.value("format", "") != std::string(kFormat) + " model" ||
        m.value("version", -1) != kVersion ||
        m.value("trainer_version", -1) != DemoModelTrainer::kVersion ||
        m.at("tokens_fnv1a64") != data.at("files").at("tokens.npy").at("fnv1a64") ||
        m.at("options") != modelOptionsJson(options_.model)) {
      return false;
    }
    for (const char* name : kModelFiles) {
      const std::string path = modelFolder() + "/" + name;
      std::error_code ec;
      const auto size = fs::file_size(path, ec);
      if (ec || size != m.at("files").at(name).at("bytes").get<uint64_t>()) return false;
      if (fileHash(path) != m.at("files").at(name).at("fnv1a64").get<std::string>()) return false;
    }
  } catch (const json::exception&) {
    return false;
  }
  return true;
}

DemoModelReport DemoWorld::modelReport() const {
  if (!isModelCurrent()) {
    throw std::runtime_error(
        "the demo model in '" + modelFolder() +
        "' is missing or out of date; build it first (DemoWorld::ensureModel)");
  }
  const json r = readJson(modelManifestPath()).at("report");
  DemoModelReport out;
  out.steps = r.at("steps").get<int64_t>();
  out.seconds = r.at("seconds").get<double>();
  out.initialHeldOutLoss = r.at("initial_held_out_loss").get<double>();
  out.finalTrainLoss = r.at("final_train_loss").get<double>();
  out.heldOutLoss = r.at("held_out_loss").get<double>();
  out.trainTokens = r.at("train_tokens").get<int64_t>();
  return out;
}

bool DemoWorld::ensureModel(const std::function<void(const std::string&)>& log) {
  auto say = [&](const std::string& line) {
    if (log) log(line);
  };
  ensureData(log);  // takes and releases the lock itself: flock does not nest
  if (isModelCurrent()) return false;
  FolderLock lock(folder_);
  if (isModelCurrent()) return false;
  std::error_code ec;
  fs::remove(modelManifestPath(), ec);

  const DemoWorldStats data = stats();
  const std::vector<int32_t> tokens = NpyTokenFile::read(tokensPath());
  const DemoModelOptions& o = options_.model;
  say("demo model: training d_model " + std::to_string(o.dModel) + ", d_mlp " +
      std::to_string(o.dMlp) + ", " + std::to_string(o.nHeads) + " heads, n_ctx " +
      std::to_string(o.nCtx) + " on " + std::to_string(tokens.size()) + " tokens, " +
      std::to_string(o.steps) + " steps of " + std::to_string(o.batchSize) + " rows");
  DemoModelReport report;
  const HookedTransformer model = DemoModelTrainer::train(
      tokens, data.vocabSize, data.bosTokenId, o, &report, [&](int64_t step, double loss) {
        if (step % 100 == 0 || step == o.steps - 1) {
          say("demo model: step " + std::to_string(step) + "/" + std::to_string(o.steps) +
              ", loss " + fixed(loss, 3));
        }
      });

  ModelLoader::saveFolder(model, modelFolder());
  AtomicFile::write(modelFolder() + "/tokenizer.json", [&] {
    std::ifstream in(tokenizerPath(), std::ios::binary);
    std::ostringstream text;
    text << in.rdbuf();
    return text.str();
  }());
  // The saved files must load through the loader real checkpoints use, and score the same.
  const HookedTransformer reloaded = ModelLoader::loadFolder(modelFolder());
  const double reloadedLoss = DemoModelTrainer::heldOutLoss(reloaded, tokens, data.bosTokenId, o);
  if (std::abs(reloadedLoss - report.heldOutLoss) > 1e-4) {
    throw std::runtime_error("demo model: the model saved in '" + modelFolder() +
                             "' scores a held-out loss of " + fixed(reloadedLoss, 5) +
                             " after reloading, but " + fixed(report.heldOutLoss, 5) +
                             " before saving. This is a bug: please report it");
  }
  say("demo model: held-out CE loss " + fixed(report.heldOutLoss, 3) + " nats (untrained " +
      fixed(report.initialHeldOutLoss, 3) + ", unigram entropy " +
      fixed(data.unigramEntropyNats, 3) + ") in " + fixed(report.seconds, 0) + " s");

  json m;
  m["format"] = std::string(kFormat) + " model";
  m["version"] = kVersion;
  m["trainer_version"] = DemoModelTrainer::kVersion;
  m["tokens_fnv1a64"] = readJson(manifestPath()).at("files").at("tokens.npy").at("fnv1a64");
  m["options"] = modelOptionsJson(o);
  m["report"] = {{"steps", report.steps},
                 {"seconds", report.seconds},
                 {"initial_held_out_loss", report.initialHeldOutLoss},
                 {"final_train_loss", report.finalTrainLoss},
                 {"held_out_loss", report.heldOutLoss},
                 {"train_tokens", report.trainTokens},
                 {"unigram_entropy_nats", data.unigramEntropyNats}};
  for (const char* name : kModelFiles) {
    const std::string path = modelFolder() + "/" + name;
    m["files"][name] = {{"bytes", static_cast<uint64_t>(fs::file_size(path))},
                        {"fnv1a64", fileHash(path)}};
  }
  AtomicFile::write(modelManifestPath(), m.dump(2) + "\n");
  return true;
}

}  // namespace sae
