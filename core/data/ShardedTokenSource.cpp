#include "data/ShardedTokenSource.h"

#include <stdexcept>

namespace sae {

ShardedTokenSource::ShardedTokenSource(std::shared_ptr<TokenSource> whole, const DataShard& shard)
    : whole_(std::move(whole)), shard_(shard) {
  if (!whole_) throw std::invalid_argument("ShardedTokenSource: no token source");
  if (shard.count < 1 || shard.index < 0 || shard.index >= shard.count)
    throw std::invalid_argument("ShardedTokenSource: " + shard.describe() + " is not a shard");
}

std::vector<int64_t> ShardedTokenSource::nextRows(int64_t rows) {
  if (rows < 0) throw std::runtime_error("token rows: negative row count requested");
  std::vector<int64_t> all;
  try {
    all = whole_->nextRows(rows * shard_.count);
  } catch (const std::exception& e) {
    throw std::runtime_error(std::string(e.what()) + " (data-parallel " + shard_.describe() +
                             ": every rank reads " + std::to_string(shard_.count) +
                             " times its own rows from the stream)");
  }
  const int64_t width = contextSize();
  const auto begin = all.begin() + shard_.index * rows * width;
  return std::vector<int64_t>(begin, begin + rows * width);
}

std::string ShardedTokenSource::describe() const {
  return whole_->describe() + ", " + shard_.describe() + "'s rows";
}

std::vector<std::pair<int64_t, int64_t>> ShardedTokenSource::callHistory() const {
  auto history = whole_->callHistory();
  for (auto& entry : history)
    entry.first /= shard_.count;
  return history;
}

void ShardedTokenSource::replayCalls(const std::vector<std::pair<int64_t, int64_t>>& history) {
  auto whole = history;
  for (auto& entry : whole)
    entry.first *= shard_.count;
  whole_->replayCalls(whole);
}

}  // namespace sae
