#include "formats/ParquetCodec.h"

#include <snappy-c.h>
#include <zlib.h>
#include <zstd.h>

#include <climits>
#include <cstring>
#include <stdexcept>

namespace sae {

std::string ParquetCodec::name(int32_t codec) {
  static const char* kNames[] = {"UNCOMPRESSED", "SNAPPY", "GZIP", "LZO",
                                 "BROTLI",       "LZ4",    "ZSTD", "LZ4_RAW"};
  if (codec >= 0 && codec < 8) return kNames[codec];
  return "codec " + std::to_string(codec);
}

bool ParquetCodec::supported(int32_t codec) {
  return codec == kUncompressed || codec == kSnappy || codec == kGzip || codec == kZstd;
}

void ParquetCodec::decompress(int32_t codec, const uint8_t* data, size_t size, size_t expected,
                              std::vector<uint8_t>& out, const std::string& context) {
  auto fail = [&](const std::string& what) {
    throw std::runtime_error(context + ": " + name(codec) + " data is corrupt: " + what);
  };
  if (expected > kMaxPageBytes)
    throw std::runtime_error(context + ": page claims " + std::to_string(expected) +
                             " uncompressed bytes, more than this reader accepts (corrupt?)");
  switch (codec) {
    case kUncompressed:
      if (size != expected)
        fail("uncompressed page of " + std::to_string(size) + " bytes, header says " +
             std::to_string(expected));
      out.assign(data, data + size);
      return;
    case kSnappy: {
      size_t length = 0;
      if (snappy_uncompressed_length(reinterpret_cast<const char*>(data), size, &length) !=
          SNAPPY_OK)
        fail("bad length preamble");
      if (length != expected)
        fail("decompresses to " + std::to_string(length) + " bytes, the page header says " +
             std::to_string(expected));
      if (snappy_validate_compressed_buffer(reinterpret_cast<const char*>(data), size) != SNAPPY_OK)
        fail("invalid snappy block");
      out.resize(expected);
      size_t got = expected;
      if (snappy_uncompress(reinterpret_cast<const char*>(data), size,
                            reinterpret_cast<char*>(out.data()), &got) != SNAPPY_OK ||
          got != expected)
        fail("snappy_uncompress failed");
      return;
    }
    case kGzip: {
      // Deflate expands at most ~1032:1; anything beyond is a corrupt size.
      if (expected / 1032 > size + 64)
        fail("claims " + std::to_string(expected) + " bytes from " + std::to_string(size));
      if (size > UINT_MAX || expected > UINT_MAX) fail("page too large");
      out.resize(expected);
      z_stream zs;
      std::memset(&zs, 0, sizeof zs);
      if (inflateInit2(&zs, 15 + 32) != Z_OK) fail("inflateInit2 failed");
      zs.next_in = const_cast<Bytef*>(data);
      zs.avail_in = static_cast<uInt>(size);
      zs.next_out = out.data();
      zs.avail_out = static_cast<uInt>(expected);
      int rc = Z_OK;
      // Several gzip members may follow each other: reset after each stream end.
      while (true) {
        rc = inflate(&zs, Z_FINISH);
        if (rc == Z_STREAM_END && zs.avail_in > 0 && zs.avail_out > 0) {
          if (inflateReset(&zs) != Z_OK) break;
          continue;
        }
        break;
      }
      const size_t produced = expected - zs.avail_out;
      const std::string message = zs.msg ? zs.msg : "code " + std::to_string(rc);
      inflateEnd(&zs);
      if (rc != Z_STREAM_END) fail("inflate error (" + message + ")");
      if (produced != expected)
        fail("decompresses to " + std::to_string(produced) + " bytes, the page header says " +
             std::to_string(expected));
      return;
    }
    case kZstd: {
      const unsigned long long content = ZSTD_getFrameContentSize(data, size);
      if (content == ZSTD_CONTENTSIZE_ERROR) fail("not a zstd frame");
      if (content != ZSTD_CONTENTSIZE_UNKNOWN && content != expected)
        fail("frame holds " + std::to_string(content) + " bytes, the page header says " +
             std::to_string(expected));
      out.resize(expected);
      ZSTD_DCtx* dctx = ZSTD_createDCtx();
      if (!dctx) fail("cannot create a zstd context");
      ZSTD_inBuffer in{data, size, 0};
      ZSTD_outBuffer o{out.data(), expected, 0};
      size_t rc = 0;
      int rounds = 0;
      do {
        rc = ZSTD_decompressStream(dctx, &o, &in);
        if (ZSTD_isError(rc)) {
          ZSTD_freeDCtx(dctx);
          fail(ZSTD_getErrorName(rc));
        }
        // Stop when the output is full or no input is left.
      } while (rc != 0 && o.pos < o.size && in.pos < in.size && ++rounds < (1 << 20));
      ZSTD_freeDCtx(dctx);
      if (o.pos != expected)
        fail("decompresses to " + std::to_string(o.pos) + " bytes, the page header says " +
             std::to_string(expected));
      return;
    }
    default:
      throw std::runtime_error(context + ": compression " + name(codec) +
                               " is not supported (only UNCOMPRESSED, SNAPPY, GZIP and ZSTD); "
                               "rewrite the file with one of those");
  }
}

}  // namespace sae
