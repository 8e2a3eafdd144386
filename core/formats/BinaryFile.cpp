#include "formats/BinaryFile.h"

#include <filesystem>
#include <stdexcept>
#include <system_error>

namespace sae {

BinaryFile::BinaryFile(const std::string& path) : path_(path) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec))
    throw std::runtime_error(path + ": is a folder, not a file");
  const auto size = std::filesystem::file_size(path, ec);
  if (ec) throw std::runtime_error(path + ": cannot open (" + ec.message() + ")");
  in_.open(path, std::ios::binary);
  if (!in_) throw std::runtime_error(path + ": cannot open for reading");
  size_ = size;
}

void BinaryFile::checkRange(uint64_t offset, uint64_t n, const std::string& what) const {
  if (offset > size_ || n > size_ - offset)
    throw std::runtime_error(path_ + ": truncated or corrupt: " + what + " needs bytes [" +
                             std::to_string(offset) + ", " + std::to_string(offset + n) +
                             ") but the file has " + std::to_string(size_) + " bytes");
}

void BinaryFile::read(uint64_t offset, void* dst, uint64_t n, const std::string& what) {
  checkRange(offset, n, what);
  if (n == 0) return;
  in_.clear();
  in_.seekg(static_cast<std::streamoff>(offset));
  in_.read(static_cast<char*>(dst), static_cast<std::streamsize>(n));
  if (!in_ || static_cast<uint64_t>(in_.gcount()) != n)
    throw std::runtime_error(path_ + ": read error at byte " + std::to_string(offset) + " (" +
                             what + ")");
}

std::vector<uint8_t> BinaryFile::read(uint64_t offset, uint64_t n, const std::string& what) {
  checkRange(offset, n, what);
  std::vector<uint8_t> out(n);
  read(offset, out.data(), n, what);
  return out;
}

}  // namespace sae
