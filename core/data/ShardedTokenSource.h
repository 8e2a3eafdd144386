#pragma once
// One rank's share of a token stream in data-parallel training: nextRows(n) takes
// world * n rows from the wrapped source and keeps block `index` of them (rows
// [index * n, (index + 1) * n)). Every rank makes the same calls on its own copy of the source,
// so the ranks' rows are disjoint and together are exactly the rows one process would get from
// nextRows(world * n). Packing is cheap next to running the model, which each rank does on its
// own rows only. Torch-free.
#include <memory>

#include "data/DataShard.h"
#include "data/TokenSource.h"

namespace sae {

class ShardedTokenSource : public TokenSource {
 public:
  ShardedTokenSource(std::shared_ptr<TokenSource> whole, const DataShard& shard);
  int64_t contextSize() const override { return whole_->contextSize(); }
  std::vector<int64_t> nextRows(int64_t rows) override;
  std::string describe() const override;
  // This rank's calls (rows per rank); replaying them makes the wrapped source's calls again.
  std::vector<std::pair<int64_t, int64_t>> callHistory() const override;
  void replayCalls(const std::vector<std::pair<int64_t, int64_t>>& history) override;

 private:
  std::shared_ptr<TokenSource> whole_;
  DataShard shard_;
};

}  // namespace sae
