// Draining a token document reader in tests.
#pragma once

#include <cstdint>
#include <vector>

#include "formats/TokenDocumentReader.h"

namespace saetest {

// Every document of `reader`, with a stream's pieces (continuations) joined back together.
inline std::vector<std::vector<int64_t>> readAllDocuments(sae::TokenDocumentReader& reader) {
  std::vector<std::vector<int64_t>> docs;
  std::vector<int64_t> piece;
  bool continuation = false;
  while (reader.next(piece, continuation)) {
    if (continuation && !docs.empty())
      docs.back().insert(docs.back().end(), piece.begin(), piece.end());
    else
      docs.push_back(piece);
  }
  return docs;
}

}  // namespace saetest
