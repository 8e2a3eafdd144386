#pragma once
// The demo world's token stream as a standard NumPy .npy file: format 1.0, a 1-D little-endian
// int32 array ('<i4', C order), header padded with spaces to a multiple of 64 bytes and ended by
// '\n' exactly as numpy.save writes it, so numpy.load and the app's dataset readers read it.
#include <cstdint>
#include <string>
#include <vector>

namespace sae {

class NpyTokenFile {
 public:
  // The complete file bytes for `tokens`.
  static std::string encode(const std::vector<int32_t>& tokens);
  // Writes encode(tokens) atomically (temporary name, then rename).
  static void write(const std::string& path, const std::vector<int32_t>& tokens);
  // Reads a file written by write() (or numpy.save of a 1-D '<i4' array). Throws
  // std::runtime_error naming the file and what is wrong: not .npy, other dtype/shape/order,
  // truncated or with trailing bytes.
  static std::vector<int32_t> read(const std::string& path);
};

}  // namespace sae
