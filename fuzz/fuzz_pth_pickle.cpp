// libFuzzer target: the pickle machine inside PthReader::read. fuzz_pth mutates whole archives,
// where the zip CRC-32 rejects nearly every change to data.pkl before it is unpickled; this target
// takes the input as data.pkl and wraps it in a well-formed torch.save archive (correct CRCs, 40
// storages "0".."39" of 4 KiB each), so the mutations reach the opcode interpreter, the memo, the
// tensor rebuilders and the state-dict walk. Same contract: a thrown std::exception is the correct
// answer; a crash, abort, hang, leak or sanitizer report is a bug.

#include <zlib.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>
#include <vector>

#include "FuzzInputFile.h"
#include "formats/PthReader.h"

namespace {

constexpr int kStorages = 40;
constexpr size_t kStorageBytes = 4096;

void put16(std::string& out, uint32_t v) {
  out.push_back(static_cast<char>(v & 0xff));
  out.push_back(static_cast<char>((v >> 8) & 0xff));
}

void put32(std::string& out, uint32_t v) {
  put16(out, v & 0xffff);
  put16(out, v >> 16);
}

struct StoredEntry {
  std::string name;
  std::string data;
  uint32_t crc = 0;
  uint32_t offset = 0;  // of its local header
};

uint32_t crcOf(const std::string& data) {
  return static_cast<uint32_t>(crc32(crc32(0L, Z_NULL, 0),
                                     reinterpret_cast<const Bytef*>(data.data()),
                                     static_cast<uInt>(data.size())));
}

void localHeader(std::string& out, const StoredEntry& e) {
  put32(out, 0x04034b50);
  put16(out, 20);  // version needed
  put16(out, 0);   // flags
  put16(out, 0);   // stored
  put32(out, 0);   // time, date
  put32(out, e.crc);
  put32(out, static_cast<uint32_t>(e.data.size()));
  put32(out, static_cast<uint32_t>(e.data.size()));
  put16(out, static_cast<uint32_t>(e.name.size()));
  put16(out, 0);  // extra
  out += e.name;
}

void directoryEntry(std::string& out, const StoredEntry& e) {
  put32(out, 0x02014b50);
  put16(out, 20);  // made by
  put16(out, 20);  // needed
  put16(out, 0);
  put16(out, 0);
  put32(out, 0);
  put32(out, e.crc);
  put32(out, static_cast<uint32_t>(e.data.size()));
  put32(out, static_cast<uint32_t>(e.data.size()));
  put16(out, static_cast<uint32_t>(e.name.size()));
  put16(out, 0);  // extra
  put16(out, 0);  // comment
  put16(out, 0);  // disk
  put16(out, 0);  // internal attributes
  put32(out, 0);  // external attributes
  put32(out, e.offset);
  out += e.name;
}

// The archive minus data.pkl: byteorder and the storages, stored (uncompressed) as torch.save
// writes them. They come first in the file, so they are written once; data.pkl, the central
// directory and its end record follow and change with every input.
struct FixedPart {
  std::vector<StoredEntry> entries;
  std::string bytes;
};

const FixedPart& fixedPart() {
  static const FixedPart part = [] {
    FixedPart p;
    p.entries.push_back({"archive/byteorder", "little"});
    for (int k = 0; k < kStorages; ++k) {
      StoredEntry storage{"archive/data/" + std::to_string(k), std::string(kStorageBytes, '\0')};
      for (size_t i = 0; i < kStorageBytes; ++i)
        storage.data[i] = static_cast<char>((i * 31 + static_cast<size_t>(k)) & 0x3f);
      p.entries.push_back(storage);
    }
    for (auto& e : p.entries) {
      e.crc = crcOf(e.data);
      e.offset = static_cast<uint32_t>(p.bytes.size());
      localHeader(p.bytes, e);
      p.bytes += e.data;
    }
    return p;
  }();
  return part;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static sae::fuzz::FuzzInputFile file("archive.pth");
  // FUZZ_VERBOSE=1 prints each input's outcome, to check that seeds get through the archive.
  static const bool verbose = std::getenv("FUZZ_VERBOSE") != nullptr;
  const FixedPart& fixed = fixedPart();
  static const bool prefixWritten = [&fixed] {
    file.write(reinterpret_cast<const uint8_t*>(fixed.bytes.data()), fixed.bytes.size());
    return true;
  }();
  (void)prefixWritten;

  StoredEntry pickle{"archive/data.pkl", std::string(reinterpret_cast<const char*>(data), size)};
  pickle.crc = crcOf(pickle.data);
  pickle.offset = static_cast<uint32_t>(fixed.bytes.size());
  std::string tail;
  localHeader(tail, pickle);
  tail += pickle.data;
  const uint32_t directoryOffset = static_cast<uint32_t>(fixed.bytes.size() + tail.size());
  std::string directory;
  directoryEntry(directory, pickle);
  for (const auto& e : fixed.entries)
    directoryEntry(directory, e);
  tail += directory;
  const uint32_t count = static_cast<uint32_t>(fixed.entries.size() + 1);
  put32(tail, 0x06054b50);
  put16(tail, 0);  // this disk
  put16(tail, 0);  // directory's disk
  put16(tail, count);
  put16(tail, count);
  put32(tail, static_cast<uint32_t>(directory.size()));
  put32(tail, directoryOffset);
  put16(tail, 0);  // comment

  const std::string& path = file.writeFrom(
      fixed.bytes.size(), reinterpret_cast<const uint8_t*>(tail.data()), tail.size());
  try {
    const auto tensors = sae::PthReader::read(path);
    for (const auto& [name, tensor] : tensors) {
      if (tensor.numel() > 0) (void)tensor.to(torch::kFloat64).sum().item<double>();
    }
    if (verbose) std::fprintf(stderr, "read %zu tensors\n", tensors.size());
  } catch (const std::exception& e) {
    if (verbose) std::fprintf(stderr, "error: %s\n", e.what());
  }
  return 0;
}
