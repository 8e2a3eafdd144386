#pragma once
// What every token-file reader hands to the packer: documents (token lists) in dataset order.
// Torch-free.
#include <cstdint>
#include <string>
#include <vector>

namespace sae {

class TokenDocumentReader {
 public:
  virtual ~TokenDocumentReader() = default;
  // Replaces `tokens` with the next piece of tokens; false when the file(s) hold no more.
  // `continuation` is set when the piece continues the previous one's document: a 1-D .npy or a
  // .bin file is one long document handed out in pieces so that it never has to fit in memory.
  // A null or empty document is an empty piece. Throws std::runtime_error naming the file.
  virtual bool next(std::vector<int64_t>& tokens, bool& continuation) = 0;
  // True when each document is a long token stream (1-D .npy, .bin): the packer keeps the rest
  // of a stream between calls instead of discarding it as SAELens discards a dataset row.
  virtual bool streams() const { return false; }
  // One line for logs, e.g. "parquet file /data/x.parquet (3 row groups, 1024 rows)".
  virtual std::string describe() const = 0;
};

}  // namespace sae
