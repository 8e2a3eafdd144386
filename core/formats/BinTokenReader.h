#pragma once
// Raw token files (nanoGPT-style train.bin): a headerless little-endian array of uint16 or
// uint32 token ids, one long document handed out in pieces. The dtype is not in the file, so
// the caller gives it. Torch-free.
#include <cstdint>
#include <string>
#include <vector>

#include "formats/BinaryFile.h"
#include "formats/TokenDocumentReader.h"

namespace sae {

class BinTokenReader : public TokenDocumentReader {
 public:
  // `dtype` is "uint16" or "uint32". Throws std::runtime_error naming the file when the dtype
  // is unknown, the file is empty, or its size is not a multiple of the token size.
  BinTokenReader(const std::string& path, const std::string& dtype);
  bool next(std::vector<int64_t>& tokens, bool& continuation) override;
  std::string describe() const override;
  bool streams() const override;
  int64_t tokenCount() const { return total_; }

 private:
  BinaryFile file_;
  std::string dtype_;
  int itemSize_ = 0;
  int64_t total_ = 0;
  int64_t served_ = 0;
  std::vector<uint8_t> raw_;
};

}  // namespace sae
