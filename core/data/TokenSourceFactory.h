#pragma once
// Builds the TokenSource a language-model run reads: dataset_path is a token file (.parquet,
// .npy, .bin, .jsonl), a folder of them, or a Hugging Face dataset name found in the hub cache
// (datasets--Org--Name/snapshots/<rev>/, files anywhere below). Torch-free.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "config/RunConfig.h"
#include "data/TokenSource.h"
#include "formats/TokenDocumentReader.h"

namespace sae {

// What the token source needs from outside the RunConfig: the tokenizer's, which lives with the
// model.
struct TokenSourceOptions {
  // The tokenizer's BOS id: 1 for gelu-1l's NeelNanda/gpt-neox-tokenizer-digits (formats.md §3).
  int64_t bosTokenId = 1;
};

class TokenSourceFactory {
 public:
  // Throws std::runtime_error naming dataset_path when nothing is found (with the hub folders
  // searched and the download command) or a file is bad.
  static std::shared_ptr<TokenSource> create(const RunConfig& config,
                                             const TokenSourceOptions& options = {});
  // The token files `datasetPath` stands for, in reading order (see the class comment). In a
  // folder with files of the train split (names starting "train" or under a "train" folder),
  // only those are used, as SAELens loads split="train".
  static std::vector<std::string> resolveFiles(const std::string& datasetPath);
  // Opens `files` (all of one kind) as one document reader; raw .bin files hold
  // `binTokenDtype` ("uint16" or "uint32", RunConfig::token_file_dtype).
  static std::unique_ptr<TokenDocumentReader> openFiles(const std::vector<std::string>& files,
                                                        const std::string& binTokenDtype,
                                                        const std::string& what);
};

}  // namespace sae
