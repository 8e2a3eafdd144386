#pragma once
// Token arrays saved with numpy.save: 1-D (one long token stream, handed out in pieces) or 2-D
// (one document per row); int16, uint16, int32, uint32 or int64, little-endian, C order.
// Torch-free; the data is read piece by piece, never all at once.
#include <cstdint>
#include <string>
#include <vector>

#include "formats/BinaryFile.h"
#include "formats/TokenDocumentReader.h"

namespace sae {

class NpyReader : public TokenDocumentReader {
 public:
  // Reads and checks the header: magic, version, dtype, order, shape, and that the file holds
  // exactly the bytes the shape needs. Throws std::runtime_error naming the file otherwise.
  explicit NpyReader(const std::string& path);
  bool next(std::vector<int64_t>& tokens, bool& continuation) override;
  std::string describe() const override;
  bool streams() const override;

  const std::vector<int64_t>& shape() const { return shape_; }
  // numpy's dtype string, e.g. "<i8".
  const std::string& dtype() const { return descr_; }

 private:
  BinaryFile file_;
  std::string descr_;
  int itemSize_ = 0;
  bool signed_ = true;
  std::vector<int64_t> shape_;
  uint64_t dataOffset_ = 0;
  int64_t total_ = 0;   // elements
  int64_t served_ = 0;  // elements handed out
  std::vector<uint8_t> raw_;
};

}  // namespace sae
