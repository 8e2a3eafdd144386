#pragma once
// Bounds-checked random access to a file, so readers can check every length against the file
// size before they allocate or read (a corrupt length must give an error, never a huge
// allocation or a crash). Torch-free.
#include <cstdint>
#include <fstream>
#include <string>
#include <vector>

namespace sae {

class BinaryFile {
 public:
  // Throws std::runtime_error "<path>: cannot open ..." when the file cannot be read.
  explicit BinaryFile(const std::string& path);
  const std::string& path() const { return path_; }
  uint64_t size() const { return size_; }
  // Reads exactly `n` bytes at `offset` into `dst`. Throws, naming the file and `what`, when the
  // range does not lie inside the file (the file is truncated or a length in it is corrupt).
  void read(uint64_t offset, void* dst, uint64_t n, const std::string& what);
  std::vector<uint8_t> read(uint64_t offset, uint64_t n, const std::string& what);
  // Throws the same "truncated" error when [offset, offset + n) is not inside the file.
  void checkRange(uint64_t offset, uint64_t n, const std::string& what) const;

 private:
  std::string path_;
  std::ifstream in_;
  uint64_t size_ = 0;
};

}  // namespace sae
