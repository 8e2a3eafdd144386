#pragma once
// Where a language-model activation source gets its token rows from: parquet shards, .npy,
// raw .bin token files, JSONL, or the demo corpus. Torch-free so readers stay plain C++.
#include <cstdint>
#include <string>
#include <vector>

namespace sae {

class TokenSource {
 public:
  virtual ~TokenSource() = default;
  // Tokens per row (the config's context_size).
  virtual int64_t contextSize() const = 0;
  // The next `rows` rows of exactly contextSize() tokens each, row-major, packed as SAELens's
  // get_batch_tokens packs documents (saelens-semantics.md §4). Throws std::runtime_error naming
  // the dataset when it runs out or a file is bad.
  virtual std::vector<int64_t> nextRows(int64_t rows) = 0;
  // One line for logs, e.g. "parquet shards in /data/c4 (3 files, 1.2M documents)".
  virtual std::string describe() const = 0;
};

}  // namespace sae
