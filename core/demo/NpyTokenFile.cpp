#include "demo/NpyTokenFile.h"

#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include "config/AtomicFile.h"

namespace sae {

namespace {

const char kMagic[] = "\x93NUMPY";
constexpr size_t kMagicLength = 6;
constexpr size_t kPrefixLength = kMagicLength + 2 + 2;  // magic, version, u16 header length

[[noreturn]] void fail(const std::string& path, const std::string& problem) {
  throw std::runtime_error("token file " + path + ": " + problem +
                           ". Delete the demo-world cache folder so that the app rebuilds it");
}

bool littleEndianHost() {
  const uint16_t probe = 1;
  unsigned char first;
  std::memcpy(&first, &probe, 1);
  return first == 1;
}

}  // namespace

std::string NpyTokenFile::encode(const std::vector<int32_t>& tokens) {
  // numpy's own dict text (numpy/lib/format.py), padded so that the data starts on a 64-byte
  // boundary.
  std::string header = "{'descr': '<i4', 'fortran_order': False, 'shape': (" +
                       std::to_string(tokens.size()) + ",), }";
  const size_t unpadded = kPrefixLength + header.size() + 1;
  header.append((64 - unpadded % 64) % 64, ' ');
  header.push_back('\n');

  std::string out(kMagic, kMagicLength);
  out.push_back('\x01');
  out.push_back('\x00');
  out.push_back(static_cast<char>(header.size() & 0xFF));
  out.push_back(static_cast<char>((header.size() >> 8) & 0xFF));
  out += header;
  const size_t dataStart = out.size();
  out.resize(dataStart + tokens.size() * 4);
  if (littleEndianHost()) {
    if (!tokens.empty()) std::memcpy(&out[dataStart], tokens.data(), tokens.size() * 4);
  } else {
    for (size_t i = 0; i < tokens.size(); ++i) {
      const auto v = static_cast<uint32_t>(tokens[i]);
      for (int b = 0; b < 4; ++b)
        out[dataStart + 4 * i + static_cast<size_t>(b)] = static_cast<char>((v >> (8 * b)) & 0xFF);
    }
  }
  return out;
}

void NpyTokenFile::write(const std::string& path, const std::vector<int32_t>& tokens) {
  AtomicFile::write(path, encode(tokens));
}

std::vector<int32_t> NpyTokenFile::read(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail(path, "cannot open the file (missing or unreadable)");
  std::ostringstream buffer;
  buffer << in.rdbuf();
  const std::string bytes = buffer.str();
  if (bytes.size() < kPrefixLength || bytes.compare(0, kMagicLength, kMagic, kMagicLength) != 0) {
    fail(path, "not a .npy file (no \\x93NUMPY magic)");
  }
  if (bytes[6] != '\x01')
    fail(path, "npy format version " + std::to_string(bytes[6]) + ", expected 1");
  const size_t headerLength = static_cast<unsigned char>(bytes[8]) |
                              (static_cast<size_t>(static_cast<unsigned char>(bytes[9])) << 8);
  if (bytes.size() < kPrefixLength + headerLength) fail(path, "truncated header");
  const std::string header = bytes.substr(kPrefixLength, headerLength);
  if (header.find("'descr': '<i4'") == std::string::npos) {
    fail(path, "dtype is not little-endian int32 ('<i4'); header: " + header);
  }
  if (header.find("'fortran_order': False") == std::string::npos) {
    fail(path, "array is not in C order; header: " + header);
  }
  const size_t shapeAt = header.find("'shape': (");
  const size_t shapeEnd = header.find(",)", shapeAt);
  if (shapeAt == std::string::npos || shapeEnd == std::string::npos) {
    fail(path, "shape is not 1-D; header: " + header);
  }
  const std::string count = header.substr(shapeAt + 10, shapeEnd - shapeAt - 10);
  if (count.empty() || count.find_first_not_of("0123456789") != std::string::npos) {
    fail(path, "shape is not 1-D; header: " + header);
  }
  const size_t n = std::stoull(count);
  const size_t dataStart = kPrefixLength + headerLength;
  if (bytes.size() != dataStart + n * 4) {
    fail(path, "holds " + std::to_string(bytes.size() - dataStart) +
                   " data bytes, the header says " + std::to_string(n) + " int32 values (" +
                   std::to_string(n * 4) + " bytes): the file is truncated or corrupt");
  }
  std::vector<int32_t> tokens(n);
  for (size_t i = 0; i < n; ++i) {
    uint32_t v = 0;
    for (int b = 3; b >= 0; --b)
      v = (v << 8) | static_cast<unsigned char>(bytes[dataStart + 4 * i + static_cast<size_t>(b)]);
    tokens[i] = static_cast<int32_t>(v);
  }
  return tokens;
}

}  // namespace sae
