// libFuzzer target: ParquetReader (Hugging Face token shards: Thrift compact metadata, RLE /
// bit-packed levels, PLAIN and dictionary values, snappy / gzip / zstd pages). A thrown
// std::exception with a message is the correct answer to bad input; a crash, abort, hang or
// sanitizer report is a bug.

#include <cstddef>
#include <cstdint>
#include <exception>
#include <vector>

#include "FuzzInputFile.h"
#include "formats/ParquetReader.h"

namespace {
// The reader streams: a page may legitimately hold millions of (empty) rows, and a consumer only
// takes what it needs. The harness reads a bounded number of documents, like one buffer fill.
constexpr int kMaxDocuments = 1 << 16;
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static sae::fuzz::FuzzInputFile file("train-00000-of-00001.parquet");
  const std::string& path = file.write(data, size);
  try {
    sae::ParquetReader reader(path);
    (void)reader.describe();
    std::vector<int64_t> tokens;
    bool continuation = false;
    for (int i = 0; i < kMaxDocuments && reader.next(tokens, continuation); ++i) {
    }
  } catch (const std::exception&) {
  }
  return 0;
}
