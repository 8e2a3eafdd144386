#include "formats/ZipArchive.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <limits>
#include <stdexcept>

#include <zlib.h>

namespace sae {

namespace {

constexpr uint32_t kLocalHeaderSignature = 0x04034b50;
constexpr uint32_t kCentralHeaderSignature = 0x02014b50;
constexpr uint32_t kEndOfDirectorySignature = 0x06054b50;
constexpr uint32_t kZip64LocatorSignature = 0x07064b50;
constexpr uint32_t kZip64EndOfDirectorySignature = 0x06064b50;
constexpr uint64_t kEndOfDirectorySize = 22;
constexpr uint64_t kMaxCommentSize = 0xffff;
// Deflate cannot expand data by more than about 1032:1; a larger claimed size is corruption and
// must not turn into an allocation.
constexpr uint64_t kMaxDeflateRatio = 1032;

uint16_t u16(const std::string& b, size_t at) {
  return static_cast<uint16_t>(static_cast<uint8_t>(b[at]) |
                               (static_cast<uint16_t>(static_cast<uint8_t>(b[at + 1])) << 8));
}

uint32_t u32(const std::string& b, size_t at) {
  return static_cast<uint32_t>(u16(b, at)) | (static_cast<uint32_t>(u16(b, at + 2)) << 16);
}

uint64_t u64(const std::string& b, size_t at) {
  return static_cast<uint64_t>(u32(b, at)) | (static_cast<uint64_t>(u32(b, at + 4)) << 32);
}

uint32_t crcOf(const std::string& data) {
  uLong crc = crc32(0L, Z_NULL, 0);
  size_t done = 0;
  while (done < data.size()) {
    const size_t chunk = std::min<size_t>(data.size() - done, 1u << 30);
    crc = crc32(crc, reinterpret_cast<const Bytef*>(data.data() + done), static_cast<uInt>(chunk));
    done += chunk;
  }
  return static_cast<uint32_t>(crc);
}

}  // namespace

void ZipArchive::fail(const std::string& problem) const {
  throw std::runtime_error("zip archive '" + path_ + "': " + problem);
}

std::string ZipArchive::readAt(uint64_t offset, uint64_t size) const {
  if (offset > fileSize_ || size > fileSize_ - offset) {
    fail("needs bytes " + std::to_string(offset) + ".." + std::to_string(offset + size) +
         " but the file has only " + std::to_string(fileSize_) + " bytes (truncated or corrupt)");
  }
  std::ifstream in(path_, std::ios::binary);
  if (!in) fail("cannot be opened");
  std::string bytes(static_cast<size_t>(size), '\0');
  in.seekg(static_cast<std::streamoff>(offset));
  in.read(bytes.data(), static_cast<std::streamsize>(size));
  if (static_cast<uint64_t>(in.gcount()) != size)
    fail("read error at offset " + std::to_string(offset));
  return bytes;
}

bool ZipArchive::hasZipSignature(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  char magic[4] = {};
  in.read(magic, 4);
  return in.gcount() == 4 && magic[0] == 'P' && magic[1] == 'K' && magic[2] == 3 && magic[3] == 4;
}

ZipArchive::ZipArchive(const std::string& path) : path_(path) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) fail("is not a file");
  fileSize_ = std::filesystem::file_size(path, ec);
  if (ec) fail("cannot be read: " + ec.message());
  if (fileSize_ < kEndOfDirectorySize) fail("is too short to be a zip archive (truncated?)");

  // The end-of-central-directory record sits in the last 22 + comment bytes; scan backwards for
  // its signature and accept the first one whose comment length reaches exactly the file's end.
  const uint64_t tailSize = std::min(fileSize_, kEndOfDirectorySize + kMaxCommentSize);
  const uint64_t tailStart = fileSize_ - tailSize;
  const std::string tail = readAt(tailStart, tailSize);
  int64_t eocd = -1;
  for (int64_t at = static_cast<int64_t>(tailSize - kEndOfDirectorySize); at >= 0; --at) {
    if (u32(tail, static_cast<size_t>(at)) != kEndOfDirectorySignature) continue;
    const uint64_t commentLength = u16(tail, static_cast<size_t>(at) + 20);
    if (static_cast<uint64_t>(at) + kEndOfDirectorySize + commentLength == tailSize) {
      eocd = at;
      break;
    }
  }
  if (eocd < 0) {
    fail("no end-of-central-directory record: not a zip archive, or truncated");
  }
  const size_t e = static_cast<size_t>(eocd);
  uint64_t entryCount = u16(tail, e + 10);
  uint64_t directorySize = u32(tail, e + 12);
  uint64_t directoryOffset = u32(tail, e + 16);
  if (u16(tail, e + 4) != 0 || u16(tail, e + 6) != 0) fail("multi-disk archives are not supported");

  // ZIP64: a locator right before the record points at the 64-bit end-of-directory record. torch
  // writes one whenever a field overflows (and some versions always).
  const uint64_t eocdOffset = tailStart + static_cast<uint64_t>(eocd);
  if (eocdOffset >= 20) {
    const std::string locator = readAt(eocdOffset - 20, 20);
    if (u32(locator, 0) == kZip64LocatorSignature) {
      const uint64_t zip64Offset = u64(locator, 8);
      const std::string record = readAt(zip64Offset, 56);
      if (u32(record, 0) != kZip64EndOfDirectorySignature) {
        fail("the ZIP64 locator points at offset " + std::to_string(zip64Offset) +
             ", which holds no ZIP64 end-of-directory record (corrupt)");
      }
      entryCount = u64(record, 32);
      directorySize = u64(record, 40);
      directoryOffset = u64(record, 48);
    }
  }
  if (directoryOffset > eocdOffset || directorySize > eocdOffset - directoryOffset) {
    fail("the central directory (offset " + std::to_string(directoryOffset) + ", " +
         std::to_string(directorySize) + " bytes) lies outside the file (truncated or corrupt)");
  }
  if (entryCount > directorySize / 46) {
    fail("the directory claims " + std::to_string(entryCount) + " entries in " +
         std::to_string(directorySize) + " bytes (corrupt)");
  }
  centralDirectoryOffset_ = directoryOffset;

  const std::string dir = readAt(directoryOffset, directorySize);
  size_t at = 0;
  for (uint64_t i = 0; i < entryCount; ++i) {
    if (dir.size() - at < 46 || u32(dir, at) != kCentralHeaderSignature) {
      fail("central directory entry " + std::to_string(i) + " is malformed (corrupt)");
    }
    Entry entry;
    entry.flags = u16(dir, at + 8);
    entry.method = u16(dir, at + 10);
    entry.crc32 = u32(dir, at + 16);
    entry.compressedSize = u32(dir, at + 20);
    entry.uncompressedSize = u32(dir, at + 24);
    const size_t nameLength = u16(dir, at + 28);
    const size_t extraLength = u16(dir, at + 30);
    const size_t commentLength = u16(dir, at + 32);
    entry.localHeaderOffset = u32(dir, at + 42);
    if (dir.size() - at - 46 < nameLength + extraLength + commentLength) {
      fail("central directory entry " + std::to_string(i) + " runs past the directory (corrupt)");
    }
    entry.name = dir.substr(at + 46, nameLength);
    // ZIP64 extended information: the 64-bit values of the fields that hold 0xFFFFFFFF, in order.
    size_t x = at + 46 + nameLength;
    const size_t extraEnd = x + extraLength;
    while (x + 4 <= extraEnd) {
      const uint16_t id = u16(dir, x);
      const size_t size = u16(dir, x + 2);
      if (x + 4 + size > extraEnd) fail("entry '" + entry.name + "' has a malformed extra field");
      if (id == 0x0001) {
        size_t f = x + 4;
        auto take = [&](uint64_t& field) {
          if (field != 0xffffffffu) return;
          if (f + 8 > x + 4 + size) fail("entry '" + entry.name + "' has a short ZIP64 field");
          field = u64(dir, f);
          f += 8;
        };
        take(entry.uncompressedSize);
        take(entry.compressedSize);
        take(entry.localHeaderOffset);
      }
      x += 4 + size;
    }
    at += 46 + nameLength + extraLength + commentLength;

    if (entry.flags & 0x1) fail("entry '" + entry.name + "' is encrypted, which is not supported");
    if (entry.method != 0 && entry.method != 8) {
      fail("entry '" + entry.name + "' uses compression method " + std::to_string(entry.method) +
           " (only stored and deflated entries are supported)");
    }
    if (entry.localHeaderOffset >= directoryOffset ||
        entry.compressedSize > directoryOffset - entry.localHeaderOffset) {
      fail("entry '" + entry.name + "' lies outside the archive's data (truncated or corrupt)");
    }
    if (entry.method == 0 && entry.compressedSize != entry.uncompressedSize) {
      fail("stored entry '" + entry.name + "' has different compressed and uncompressed sizes");
    }
    if (entry.method == 8 &&
        entry.uncompressedSize > entry.compressedSize * kMaxDeflateRatio + 64) {
      fail("deflated entry '" + entry.name + "' claims an impossible size (corrupt)");
    }
    if (!index_.emplace(entry.name, entries_.size()).second) {
      fail("has two entries named '" + entry.name + "'");
    }
    entries_.push_back(std::move(entry));
  }
}

const ZipArchive::Entry* ZipArchive::find(const std::string& name) const {
  const auto it = index_.find(name);
  return it == index_.end() ? nullptr : &entries_[it->second];
}

std::string ZipArchive::read(const Entry& entry) const {
  const std::string header = readAt(entry.localHeaderOffset, 30);
  if (u32(header, 0) != kLocalHeaderSignature) {
    fail("entry '" + entry.name + "' has no local header at offset " +
         std::to_string(entry.localHeaderOffset) + " (corrupt)");
  }
  const uint64_t nameLength = u16(header, 26);
  const uint64_t extraLength = u16(header, 28);
  if (nameLength != entry.name.size() ||
      readAt(entry.localHeaderOffset + 30, nameLength) != entry.name) {
    fail("entry '" + entry.name + "': the local header names a different file (corrupt)");
  }
  const uint64_t dataOffset = entry.localHeaderOffset + 30 + nameLength + extraLength;
  if (dataOffset > centralDirectoryOffset_ ||
      entry.compressedSize > centralDirectoryOffset_ - dataOffset) {
    fail("entry '" + entry.name + "' runs into the central directory (truncated or corrupt)");
  }
  std::string data = readAt(dataOffset, entry.compressedSize);
  if (entry.method == 8) {
    std::string out(static_cast<size_t>(entry.uncompressedSize), '\0');
    z_stream stream{};
    if (inflateInit2(&stream, -MAX_WBITS) != Z_OK) fail("zlib could not be initialised");
    stream.next_in = reinterpret_cast<Bytef*>(data.data());
    stream.avail_in = static_cast<uInt>(std::min<uint64_t>(data.size(), UINT32_MAX));
    stream.next_out = reinterpret_cast<Bytef*>(out.data());
    stream.avail_out = static_cast<uInt>(std::min<uint64_t>(out.size(), UINT32_MAX));
    const int rc = inflate(&stream, Z_FINISH);
    const uint64_t produced = stream.total_out;
    inflateEnd(&stream);
    if (rc != Z_STREAM_END || produced != entry.uncompressedSize) {
      fail("deflated entry '" + entry.name + "' does not inflate to its stated size (corrupt)");
    }
    data = std::move(out);
  }
  const uint32_t crc = crcOf(data);
  if (crc != entry.crc32) {
    fail("entry '" + entry.name + "' fails its CRC-32 check (the file is corrupt)");
  }
  return data;
}

}  // namespace sae
