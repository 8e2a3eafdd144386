#pragma once
// A read-only zip archive reader, enough for the archives torch.save writes (stored entries,
// ZIP64 records, 64-byte aligned data through padding extra fields) and plain deflated entries.
// Debian's libtorch exposes no usable reader for these, and a full zip library is not a
// dependency; every offset and size read from the file is checked against the file size so a
// truncated or corrupted archive gives an error, never a crash or a huge allocation.
#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace sae {

class ZipArchive {
 public:
  struct Entry {
    std::string name;
    uint16_t method = 0;  // 0 stored, 8 deflated
    uint16_t flags = 0;
    uint32_t crc32 = 0;
    uint64_t compressedSize = 0;
    uint64_t uncompressedSize = 0;
    uint64_t localHeaderOffset = 0;
  };

  // Reads and validates the central directory. Throws std::runtime_error naming the file when it
  // is not a zip archive, is truncated, or its directory is inconsistent.
  explicit ZipArchive(const std::string& path);

  const std::string& path() const { return path_; }
  const std::vector<Entry>& entries() const { return entries_; }
  // nullptr when there is no entry of that exact name.
  const Entry* find(const std::string& name) const;
  // The entry's bytes, after checking its local header and its CRC-32 (so a flipped bit in the
  // data is reported, not silently read).
  std::string read(const Entry& entry) const;

  // True when the file starts with a local file header signature ("PK\3\4").
  static bool hasZipSignature(const std::string& path);

 private:
  [[noreturn]] void fail(const std::string& problem) const;
  std::string readAt(uint64_t offset, uint64_t size) const;

  std::string path_;
  uint64_t fileSize_ = 0;
  uint64_t centralDirectoryOffset_ = 0;
  std::vector<Entry> entries_;
  std::map<std::string, size_t> index_;
};

}  // namespace sae
