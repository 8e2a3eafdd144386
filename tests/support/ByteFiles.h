// Whole-file byte reads and in-place rewrites, for tests that corrupt files thousands of times.
#pragma once

#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>

namespace saetest {

inline std::string readBytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// Rewrites in place and then sets the size: O_TRUNC on ext4 forces a flush on close
// (auto_da_alloc), which made thousands of rewrites take a minute.
inline void writeBytes(const std::string& path, const std::string& bytes) {
  if (!std::filesystem::exists(path)) std::ofstream(path, std::ios::binary);
  {
    std::fstream out(path, std::ios::binary | std::ios::in | std::ios::out);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  }
  std::filesystem::resize_file(path, bytes.size());
}

}  // namespace saetest
