#pragma once
// Where a language-model activation source gets its token rows from: parquet shards, .npy,
// raw .bin token files, JSONL, or the demo corpus. Torch-free so readers stay plain C++.
#include <cstdint>
#include <string>
#include <utility>
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
  // The row counts of every nextRows call so far, run-length encoded as (rows, calls) pairs.
  // Packing depends on how rows are asked for (a call drops the rest of its last document), so
  // a resumed run replays exactly these calls (replayCalls) to reach the same position.
  virtual std::vector<std::pair<int64_t, int64_t>> callHistory() const = 0;
  // On a fresh source: makes the calls of `history` and throws their rows away.
  virtual void replayCalls(const std::vector<std::pair<int64_t, int64_t>>& history) = 0;
};

}  // namespace sae
