#pragma once
// Which share of the data one rank of a data-parallel run reads (core/train/DistributedContext.h).
// The default, {0, 1}, is the whole stream: every source reads exactly what it read before.
#include <cstdint>
#include <string>

namespace sae {

struct DataShard {
  int64_t index = 0;  // this rank
  int64_t count = 1;  // WORLD_SIZE

  bool isWhole() const { return count <= 1; }
  // "rank 1 of 2" for describe() lines and errors.
  std::string describe() const {
    return "rank " + std::to_string(index) + " of " + std::to_string(count);
  }
};

}  // namespace sae
