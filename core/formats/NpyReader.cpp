#include "formats/NpyReader.h"

#include <cctype>
#include <cstring>
#include <limits>
#include <stdexcept>

namespace sae {

namespace {

// Pieces of a 1-D stream: 1M tokens keeps memory small and the per-piece cost negligible.
constexpr int64_t kStreamPiece = 1 << 20;

std::string trim(const std::string& s) {
  size_t a = 0, b = s.size();
  while (a < b && std::isspace(static_cast<unsigned char>(s[a])))
    ++a;
  while (b > a && std::isspace(static_cast<unsigned char>(s[b - 1])))
    --b;
  return s.substr(a, b - a);
}

// The value text after 'key': in numpy's header dict, up to the next top-level comma or '}'.
std::string dictValue(const std::string& header, const std::string& key, const std::string& path) {
  size_t pos = header.find("'" + key + "'");
  if (pos == std::string::npos) pos = header.find("\"" + key + "\"");
  if (pos == std::string::npos)
    throw std::runtime_error(path + ": not a valid .npy file: the header has no '" + key +
                             "' entry (header: " + header + ")");
  pos = header.find(':', pos + key.size() + 2);
  if (pos == std::string::npos)
    throw std::runtime_error(path + ": not a valid .npy file: malformed header " + header);
  int depth = 0;
  size_t end = pos + 1;
  for (; end < header.size(); ++end) {
    const char c = header[end];
    if (c == '(' || c == '[') ++depth;
    if (c == ')' || c == ']') --depth;
    if (depth == 0 && (c == ',' || c == '}')) break;
  }
  return trim(header.substr(pos + 1, end - pos - 1));
}

}  // namespace

NpyReader::NpyReader(const std::string& path) : file_(path) {
  const std::string& p = file_.path();
  if (file_.size() < 10)
    throw std::runtime_error(p + ": not a .npy file: only " + std::to_string(file_.size()) +
                             " bytes (a .npy header needs at least 10)");
  uint8_t pre[12] = {};
  file_.read(0, pre, std::min<uint64_t>(12, file_.size()), ".npy preamble");
  if (std::memcmp(pre, "\x93NUMPY", 6) != 0)
    throw std::runtime_error(p + ": not a .npy file (it does not start with \\x93NUMPY)");
  const int major = pre[6];
  uint64_t headerLen = 0;
  if (major == 1) {
    headerLen = pre[8] | (uint64_t(pre[9]) << 8);
    dataOffset_ = 10;
  } else if (major == 2 || major == 3) {
    if (file_.size() < 12) throw std::runtime_error(p + ": truncated .npy preamble");
    headerLen =
        pre[8] | (uint64_t(pre[9]) << 8) | (uint64_t(pre[10]) << 16) | (uint64_t(pre[11]) << 24);
    dataOffset_ = 12;
  } else {
    throw std::runtime_error(p + ": unsupported .npy format version " + std::to_string(major) +
                             " (expected 1, 2 or 3)");
  }
  if (headerLen > 1 << 20)
    throw std::runtime_error(p + ": corrupt .npy header length " + std::to_string(headerLen));
  const auto headerBytes = file_.read(dataOffset_, headerLen, ".npy header");
  dataOffset_ += headerLen;
  const std::string header(headerBytes.begin(), headerBytes.end());

  std::string descr = dictValue(header, "descr", p);
  if (descr.size() < 2 || (descr.front() != '\'' && descr.front() != '"') ||
      descr.back() != descr.front())
    throw std::runtime_error(p + ": malformed dtype " + descr + " in the .npy header");
  descr_ = descr.substr(1, descr.size() - 2);
  struct Known {
    const char* name;
    int size;
    bool isSigned;
  };
  static const Known kKnown[] = {
      {"<i2", 2, true}, {"<u2", 2, false}, {"<i4", 4, true}, {"<u4", 4, false}, {"<i8", 8, true}};
  for (const auto& k : kKnown) {
    if (descr_ == k.name) {
      itemSize_ = k.size;
      signed_ = k.isSigned;
    }
  }
  if (itemSize_ == 0) {
    const bool bigEndian = !descr_.empty() && descr_[0] == '>';
    throw std::runtime_error(p + ": unsupported dtype '" + descr_ + "'" +
                             (bigEndian ? " (big-endian)" : "") +
                             ": token arrays must be little-endian int16, uint16, int32, uint32 "
                             "or int64 (e.g. np.save(path, tokens.astype(np.int32)))");
  }
  const std::string fortran = dictValue(header, "fortran_order", p);
  if (fortran == "True")
    throw std::runtime_error(p +
                             ": the array is stored in Fortran order; save it in C order "
                             "(np.save(path, np.ascontiguousarray(tokens)))");
  if (fortran != "False")
    throw std::runtime_error(p + ": malformed fortran_order '" + fortran + "' in the .npy header");

  std::string shape = dictValue(header, "shape", p);
  if (shape.size() < 2 || shape.front() != '(' || shape.back() != ')')
    throw std::runtime_error(p + ": malformed shape " + shape + " in the .npy header");
  shape = shape.substr(1, shape.size() - 2);
  size_t start = 0;
  while (start <= shape.size()) {
    size_t comma = shape.find(',', start);
    if (comma == std::string::npos) comma = shape.size();
    const std::string part = trim(shape.substr(start, comma - start));
    if (!part.empty()) {
      if (part.size() > 18 || part.find_first_not_of("0123456789") != std::string::npos)
        throw std::runtime_error(p + ": malformed shape (" + shape + ") in the .npy header");
      shape_.push_back(std::stoll(part));
    }
    start = comma + 1;
  }
  if (shape_.size() != 1 && shape_.size() != 2)
    throw std::runtime_error(p + ": the array has " + std::to_string(shape_.size()) +
                             " dimensions; token arrays must be 1-D (one token stream) or 2-D "
                             "(one document per row)");
  const uint64_t available = file_.size() - dataOffset_;
  uint64_t elements = 1;
  for (int64_t d : shape_) {
    if (d != 0 && elements > available / static_cast<uint64_t>(d))
      elements = std::numeric_limits<uint64_t>::max() / 16;  // more than the file can hold
    else
      elements *= static_cast<uint64_t>(d);
  }
  const bool tooBig = elements > available / itemSize_;
  if (tooBig || elements * itemSize_ != available) {
    std::string shapeText;
    for (size_t i = 0; i < shape_.size(); ++i)
      shapeText += (i ? ", " : "") + std::to_string(shape_[i]);
    throw std::runtime_error(p + ": " + (tooBig ? "truncated" : "has trailing bytes") +
                             ": shape (" + shapeText + ") of " + descr_ + " needs " +
                             (tooBig ? std::string("more than ") + std::to_string(available)
                                     : std::to_string(elements * itemSize_)) +
                             " data bytes but the file has " + std::to_string(available) +
                             " after the header");
  }
  total_ = static_cast<int64_t>(elements);
}

bool NpyReader::next(std::vector<int64_t>& tokens, bool& continuation) {
  int64_t count = 0;
  if (shape_.size() == 1) {
    if (served_ >= total_) return false;
    count = std::min(kStreamPiece, total_ - served_);
    continuation = served_ > 0;
  } else {
    const int64_t cols = shape_[1];
    const int64_t row = cols == 0 ? served_ : served_ / cols;
    if (row >= shape_[0]) return false;
    count = cols;
    continuation = false;
    if (cols == 0) {
      ++served_;  // counts rows when rows are empty
      tokens.clear();
      return true;
    }
  }
  const uint64_t offset = dataOffset_ + static_cast<uint64_t>(served_) * itemSize_;
  raw_.resize(static_cast<size_t>(count) * itemSize_);
  file_.read(offset, raw_.data(), raw_.size(), "token data");
  tokens.resize(static_cast<size_t>(count));
  const uint8_t* b = raw_.data();
  for (int64_t i = 0; i < count; ++i, b += itemSize_) {
    int64_t v = 0;
    switch (itemSize_) {
      case 2: {
        const uint16_t u = uint16_t(b[0] | (b[1] << 8));
        v = signed_ ? int64_t(int16_t(u)) : int64_t(u);
        break;
      }
      case 4: {
        const uint32_t u = uint32_t(b[0]) | (uint32_t(b[1]) << 8) | (uint32_t(b[2]) << 16) |
                           (uint32_t(b[3]) << 24);
        v = signed_ ? int64_t(int32_t(u)) : int64_t(u);
        break;
      }
      default: {
        uint64_t u = 0;
        for (int k = 7; k >= 0; --k)
          u = (u << 8) | b[k];
        v = static_cast<int64_t>(u);
      }
    }
    if (v < 0)
      throw std::runtime_error(file_.path() + ": token id " + std::to_string(v) + " at element " +
                               std::to_string(served_ + i) + " is negative: not a token array?");
    tokens[static_cast<size_t>(i)] = v;
  }
  served_ += count;
  return true;
}

bool NpyReader::streams() const {
  return shape_.size() == 1;
}

std::string NpyReader::describe() const {
  if (shape_.size() == 1)
    return ".npy token stream " + file_.path() + " (" + std::to_string(total_) + " tokens, " +
           descr_ + ")";
  return ".npy file " + file_.path() + " (" + std::to_string(shape_[0]) + " documents of " +
         std::to_string(shape_[1]) + " tokens, " + descr_ + ")";
}

}  // namespace sae
