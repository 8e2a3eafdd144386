#include "formats/BinTokenReader.h"

#include <algorithm>
#include <stdexcept>

namespace sae {

namespace {
constexpr int64_t kPiece = 1 << 20;  // tokens per piece: bounded memory for any file size
}

BinTokenReader::BinTokenReader(const std::string& path, const std::string& dtype)
    : file_(path), dtype_(dtype) {
  if (dtype == "uint16")
    itemSize_ = 2;
  else if (dtype == "uint32")
    itemSize_ = 4;
  else
    throw std::runtime_error(path + ": unsupported token dtype \"" + dtype +
                             "\" for a raw .bin token file (expected \"uint16\" or \"uint32\")");
  if (file_.size() == 0) throw std::runtime_error(path + ": the token file is empty");
  if (file_.size() % itemSize_ != 0)
    throw std::runtime_error(path + ": " + std::to_string(file_.size()) +
                             " bytes is not a whole number of " + dtype +
                             " tokens: the file is truncated or its dtype is not " + dtype);
  total_ = static_cast<int64_t>(file_.size() / itemSize_);
}

bool BinTokenReader::next(std::vector<int64_t>& tokens, bool& continuation) {
  if (served_ >= total_) return false;
  const int64_t count = std::min(kPiece, total_ - served_);
  raw_.resize(static_cast<size_t>(count) * itemSize_);
  file_.read(static_cast<uint64_t>(served_) * itemSize_, raw_.data(), raw_.size(), "tokens");
  tokens.resize(static_cast<size_t>(count));
  const uint8_t* b = raw_.data();
  for (int64_t i = 0; i < count; ++i, b += itemSize_) {
    uint32_t v = uint32_t(b[0]) | (uint32_t(b[1]) << 8);
    if (itemSize_ == 4) v |= (uint32_t(b[2]) << 16) | (uint32_t(b[3]) << 24);
    tokens[static_cast<size_t>(i)] = v;
  }
  continuation = served_ > 0;
  served_ += count;
  return true;
}

bool BinTokenReader::streams() const {
  return true;
}

std::string BinTokenReader::describe() const {
  return "raw " + dtype_ + " token file " + file_.path() + " (" + std::to_string(total_) +
         " tokens)";
}

}  // namespace sae
