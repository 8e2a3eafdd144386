#pragma once
// The demo world (design.md "Models and data without a network"): a corpus from the project's
// own generator, a byte-level BPE tokenizer trained on it and the corpus as a token stream,
// built on first use in a cache folder and reused afterwards.
//
// Folder layout (default: $XDG_CACHE_HOME, else ~/.cache, then sae-workbench/demo-world/):
//   tokenizer.json   Hugging Face tokenizers format (see BpeTokenizer.h for the id layout)
//   tokens.npy       1-D int32 token stream: for each document, <|endoftext|> (id 0, the BOS)
//                    then its tokens; SAELens-style packing into rows reads it as one stream
//   manifest.json    written last: versions, seed, options, statistics (token count, unigram
//                    entropy in nats) and the size and FNV-1a hash of each file
//   model/           the demo language model as a TransformerLens-style checkpoint folder:
//                    config.json (TransformerLens keys), model.safetensors, tokenizer.json
//   model-manifest.json  written last for the model: versions, the token file's hash, the
//                    model options, the losses, sizes and hashes of the model files
// Every file is written atomically; a folder whose manifest is missing, from another version or
// seed, or whose files do not match their recorded size and hash is rebuilt from scratch, so a
// stale or half-written cache is never read. Builds take a lock on <folder>/.lock, so two
// processes (the GUI and sae-train) never build it at the same time.
#include <cstdint>
#include <functional>
#include <string>

#include "demo/DemoModelOptions.h"

namespace sae {

struct DemoWorldOptions {
  uint64_t seed = 20240501;
  size_t corpusBytes = 8'000'000;  // about 2.2M tokens at vocab 2048
  int vocabSize = 2048;
  DemoModelOptions model;
};

struct DemoWorldStats {
  int64_t documents = 0;
  int64_t corpusBytes = 0;
  int64_t tokens = 0;  // BOS tokens included
  int vocabSize = 0;
  int bosTokenId = 0;
  // -sum p log p over the token frequencies of tokens.npy: what a model that ignores context
  // would score as cross-entropy, the baseline the demo model must beat.
  double unigramEntropyNats = 0;
};

class DemoWorld {
 public:
  // Bumped whenever the layout or the tokenizer's training changes (the corpus generator has its
  // own version, also recorded).
  static constexpr int kVersion = 1;

  // $XDG_CACHE_HOME/sae-workbench/demo-world if XDG_CACHE_HOME is set and absolute, else
  // $HOME/.cache/sae-workbench/demo-world. Throws if neither variable is usable.
  static std::string defaultFolder();
  // model_name / dataset_path "demo" stand for this world (resolved by ActivationSourceFactory).
  static bool isDemoName(const std::string& name) { return name == "demo"; }
  // Whether a config's model or dataset is the demo world's, i.e. whether it must be built.
  static bool usedBy(const std::string& modelName, const std::string& datasetPath) {
    return isDemoName(modelName) || isDemoName(datasetPath);
  }

  explicit DemoWorld(std::string folder, DemoWorldOptions options = {});

  // Builds the corpus, tokenizer and token stream unless a current copy is there. Returns true
  // when it built. `log` receives one line per stage (with timings). Throws std::runtime_error
  // naming the folder on I/O errors.
  bool ensureData(const std::function<void(const std::string&)>& log = {});
  // Whether the folder holds a complete, current copy (manifest, versions, sizes and hashes).
  bool isDataCurrent() const;
  // Statistics from the manifest; throws if the data is not current.
  DemoWorldStats stats() const;

  // ensureData(), then trains the demo model (DemoModelTrainer, a few minutes on two cores)
  // unless a current one is there, saves it with ModelLoader::saveFolder, loads it back through
  // ModelLoader::loadFolder and checks that the reloaded model scores the same held-out loss.
  // Returns true when it trained.
  bool ensureModel(const std::function<void(const std::string&)>& log = {});
  bool isModelCurrent() const;
  // The training report from the model manifest; throws if the model is not current.
  DemoModelReport modelReport() const;

  const std::string& folder() const { return folder_; }
  const DemoWorldOptions& options() const { return options_; }
  std::string tokenizerPath() const { return folder_ + "/tokenizer.json"; }
  std::string tokensPath() const { return folder_ + "/tokens.npy"; }
  std::string manifestPath() const { return folder_ + "/manifest.json"; }
  // A folder ModelLoader::loadFolder reads (config.json + model.safetensors + tokenizer.json).
  std::string modelFolder() const { return folder_ + "/model"; }
  std::string modelManifestPath() const { return folder_ + "/model-manifest.json"; }

  // FNV-1a 64 of a file's bytes as 16 hex digits ("" if it cannot be read).
  static std::string fileHash(const std::string& path);

 private:
  std::string folder_;
  DemoWorldOptions options_;
};

}  // namespace sae
