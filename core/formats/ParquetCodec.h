#pragma once
// Decompression of parquet pages with Debian's libraries: UNCOMPRESSED, SNAPPY (raw block),
// GZIP (zlib, gzip or zlib framing) and ZSTD. Torch-free.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace sae {

class ParquetCodec {
 public:
  enum Codec : int32_t { kUncompressed = 0, kSnappy = 1, kGzip = 2, kZstd = 6 };
  // Largest page this reader decompresses: a corrupt size must not become a huge allocation.
  static constexpr size_t kMaxPageBytes = size_t(256) << 20;

  // "SNAPPY", "LZ4_RAW", ... for messages.
  static std::string name(int32_t codec);
  static bool supported(int32_t codec);
  // Decompresses `size` bytes into exactly `expected` bytes. Throws std::runtime_error starting
  // with `context` when the data is corrupt or does not decompress to `expected` bytes.
  static void decompress(int32_t codec, const uint8_t* data, size_t size, size_t expected,
                         std::vector<uint8_t>& out, const std::string& context);
};

}  // namespace sae
