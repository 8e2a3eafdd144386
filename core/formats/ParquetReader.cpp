#include "formats/ParquetReader.h"

#include <algorithm>
#include <cstring>
#include <functional>
#include <stdexcept>
#include <utility>

#include "formats/ParquetCodec.h"
#include "formats/ThriftCompactDecoder.h"

namespace sae {

namespace {

using Thrift = ThriftCompactDecoder;

// Parquet enums (apache/parquet-format parquet.thrift).
constexpr int32_t kInt32 = 1, kInt64 = 2;
constexpr int32_t kOptional = 1, kRepeated = 2;
constexpr int32_t kDataPage = 0, kDictionaryPage = 2, kDataPageV2 = 3;
constexpr int32_t kPlain = 0, kPlainDictionary = 2, kRle = 3, kRleDictionary = 8;
// More level entries than this in one page is corrupt (real pages hold well under a million).
constexpr int64_t kMaxPageValues = int64_t(1) << 24;

std::string encodingName(int32_t e) {
  static const char* kNames[] = {
      "PLAIN",          "GROUP_VAR_INT",       "PLAIN_DICTIONARY",        "RLE",
      "BIT_PACKED",     "DELTA_BINARY_PACKED", "DELTA_LENGTH_BYTE_ARRAY", "DELTA_BYTE_ARRAY",
      "RLE_DICTIONARY", "BYTE_STREAM_SPLIT"};
  if (e >= 0 && e < 10) return kNames[e];
  return "encoding " + std::to_string(e);
}

std::string typeName(int32_t t) {
  static const char* kNames[] = {"BOOLEAN", "INT32",  "INT64",      "INT96",
                                 "FLOAT",   "DOUBLE", "BYTE_ARRAY", "FIXED_LEN_BYTE_ARRAY"};
  if (t >= 0 && t < 8) return kNames[t];
  return "type " + std::to_string(t);
}

int bitWidth(uint32_t maxValue) {
  int w = 0;
  while (maxValue) {
    ++w;
    maxValue >>= 1;
  }
  return w;
}

struct SchemaElement {
  int32_t type = -1;
  int32_t repetition = 0;  // REQUIRED unless set
  std::string name;
  int32_t numChildren = 0;
  std::vector<size_t> children;
};

struct ColumnChunkMeta {
  std::vector<std::string> path;
  int32_t type = -1;
  int32_t codec = 0;
  int64_t numValues = 0;
  int64_t compressedSize = 0;
  int64_t dataPageOffset = -1;
  int64_t dictionaryPageOffset = -1;
  bool external = false;
};

struct RowGroupMeta {
  std::vector<ColumnChunkMeta> columns;
  int64_t numRows = 0;
};

ColumnChunkMeta readColumnChunk(Thrift& t) {
  ColumnChunkMeta c;
  t.beginStruct();
  Thrift::Field f;
  while (t.nextField(f)) {
    if (f.id == 1 && f.type == Thrift::kBinary) {
      c.external = !t.readBinary().empty();
    } else if (f.id == 3 && f.type == Thrift::kStruct) {
      t.beginStruct();
      Thrift::Field g;
      while (t.nextField(g)) {
        if (g.id == 1 && g.type == Thrift::kI32) {
          c.type = t.readI32();
        } else if (g.id == 3 && g.type == Thrift::kList) {
          uint8_t elem = 0;
          const uint32_t n = t.readListHeader(elem);
          if (elem != Thrift::kBinary) t.fail("path_in_schema is not a list of strings");
          for (uint32_t i = 0; i < n; ++i)
            c.path.push_back(t.readBinary());
        } else if (g.id == 4 && g.type == Thrift::kI32) {
          c.codec = t.readI32();
        } else if (g.id == 5 && g.type == Thrift::kI64) {
          c.numValues = t.readI64();
        } else if (g.id == 7 && g.type == Thrift::kI64) {
          c.compressedSize = t.readI64();
        } else if (g.id == 9 && g.type == Thrift::kI64) {
          c.dataPageOffset = t.readI64();
        } else if (g.id == 11 && g.type == Thrift::kI64) {
          c.dictionaryPageOffset = t.readI64();
        } else {
          t.skip(g.type);
        }
      }
      t.endStruct();
    } else {
      t.skip(f.type);
    }
  }
  t.endStruct();
  return c;
}

// RLE / bit-packed hybrid (parquet Encodings.md): `count` values of `width` bits into `out`.
// Returns false when the data ends before `count` values.
bool decodeHybrid(const uint8_t* p, size_t len, int width, size_t count,
                  std::vector<uint32_t>& out) {
  out.clear();
  out.reserve(count);
  size_t pos = 0;
  const uint64_t mask = width >= 32 ? 0xFFFFFFFFull : ((uint64_t(1) << width) - 1);
  while (out.size() < count) {
    uint64_t header = 0;
    int shift = 0;
    for (;;) {
      if (pos >= len || shift > 63) return false;
      const uint8_t b = p[pos++];
      header |= uint64_t(b & 0x7F) << shift;
      shift += 7;
      if (!(b & 0x80)) break;
    }
    const size_t want = count - out.size();
    if (header & 1) {
      const uint64_t groups = header >> 1;
      const uint64_t values = groups > (uint64_t(1) << 40) ? (uint64_t(1) << 43) : groups * 8;
      const size_t take = static_cast<size_t>(std::min<uint64_t>(values, want));
      const size_t needBytes = (take * static_cast<size_t>(width) + 7) / 8;
      if (needBytes > len - pos) return false;
      for (size_t k = 0; k < take; ++k) {
        const size_t bit = k * static_cast<size_t>(width);
        const size_t byte = bit / 8;
        uint64_t window = 0;
        for (size_t i = 0; i < 5 && byte + i < len - pos; ++i)
          window |= uint64_t(p[pos + byte + i]) << (8 * i);
        out.push_back(static_cast<uint32_t>((window >> (bit % 8)) & mask));
      }
      const uint64_t groupBytes =
          groups > (uint64_t(1) << 40) ? UINT64_MAX : groups * static_cast<uint64_t>(width);
      pos += static_cast<size_t>(std::min<uint64_t>(groupBytes, len - pos));
    } else {
      const uint64_t run = header >> 1;
      const size_t valueBytes = (static_cast<size_t>(width) + 7) / 8;
      if (valueBytes > len - pos) return false;
      uint32_t v = 0;
      for (size_t i = 0; i < valueBytes; ++i)
        v |= uint32_t(p[pos + i]) << (8 * i);
      pos += valueBytes;
      const size_t take = static_cast<size_t>(std::min<uint64_t>(run, want));
      out.insert(out.end(), take, v);
    }
  }
  return true;
}

uint32_t readU32(const uint8_t* p) {
  return uint32_t(p[0]) | (uint32_t(p[1]) << 8) | (uint32_t(p[2]) << 16) | (uint32_t(p[3]) << 24);
}

}  // namespace

ParquetReader::~ParquetReader() = default;

void ParquetReader::fail(const std::string& what) const {
  throw std::runtime_error(file_.path() + ": " + what);
}

ParquetReader::ParquetReader(const std::string& path) : file_(path) {
  const uint64_t size = file_.size();
  if (size < 12) fail("not a parquet file: only " + std::to_string(size) + " bytes (truncated?)");
  uint8_t head[4], tail[8];
  file_.read(0, head, 4, "magic");
  file_.read(size - 8, tail, 8, "footer");
  if (std::memcmp(head, "PAR1", 4) != 0) fail("not a parquet file (it does not start with PAR1)");
  if (std::memcmp(tail + 4, "PAR1", 4) != 0)
    fail("not a complete parquet file (it does not end with PAR1: truncated?)");
  const uint64_t footerLen = readU32(tail);
  if (footerLen > size - 12)
    fail("corrupt footer length " + std::to_string(footerLen) + " in a file of " +
         std::to_string(size) + " bytes");
  const uint64_t footerStart = size - 8 - footerLen;
  const auto footer = file_.read(footerStart, footerLen, "file metadata");

  Thrift t(footer.data(), footer.size(), path + ": file metadata");
  std::vector<SchemaElement> schema;
  std::vector<RowGroupMeta> groups;
  try {
    t.beginStruct();
    Thrift::Field f;
    while (t.nextField(f)) {
      if (f.id == 2 && f.type == Thrift::kList) {
        uint8_t elem = 0;
        const uint32_t n = t.readListHeader(elem);
        if (elem != Thrift::kStruct) t.fail("schema is not a list of structs");
        for (uint32_t i = 0; i < n; ++i) {
          SchemaElement e;
          t.beginStruct();
          Thrift::Field g;
          while (t.nextField(g)) {
            if (g.id == 1 && g.type == Thrift::kI32)
              e.type = t.readI32();
            else if (g.id == 3 && g.type == Thrift::kI32)
              e.repetition = t.readI32();
            else if (g.id == 4 && g.type == Thrift::kBinary)
              e.name = t.readBinary();
            else if (g.id == 5 && g.type == Thrift::kI32)
              e.numChildren = t.readI32();
            else
              t.skip(g.type);
          }
          t.endStruct();
          schema.push_back(std::move(e));
        }
      } else if (f.id == 3 && f.type == Thrift::kI64) {
        numRows_ = t.readI64();
      } else if (f.id == 4 && f.type == Thrift::kList) {
        uint8_t elem = 0;
        const uint32_t n = t.readListHeader(elem);
        if (elem != Thrift::kStruct) t.fail("row_groups is not a list of structs");
        for (uint32_t i = 0; i < n; ++i) {
          RowGroupMeta rg;
          t.beginStruct();
          Thrift::Field g;
          while (t.nextField(g)) {
            if (g.id == 1 && g.type == Thrift::kList) {
              uint8_t ce = 0;
              const uint32_t m = t.readListHeader(ce);
              if (ce != Thrift::kStruct) t.fail("columns is not a list of structs");
              for (uint32_t k = 0; k < m; ++k)
                rg.columns.push_back(readColumnChunk(t));
            } else if (g.id == 3 && g.type == Thrift::kI64) {
              rg.numRows = t.readI64();
            } else {
              t.skip(g.type);
            }
          }
          t.endStruct();
          groups.push_back(std::move(rg));
        }
      } else {
        t.skip(f.type);
      }
    }
    t.endStruct();
  } catch (const Thrift::OutOfData& e) {
    throw std::runtime_error(e.what());
  }

  // The schema is a depth-first flattened tree; rebuild it with every count checked.
  if (schema.empty()) fail("corrupt metadata: empty schema");
  std::function<size_t(size_t, int)> build = [&](size_t i, int depth) -> size_t {
    if (depth > 16) fail("corrupt metadata: schema nested too deeply");
    SchemaElement& e = schema[i];
    if (e.numChildren < 0 || static_cast<size_t>(e.numChildren) > schema.size())
      fail("corrupt metadata: schema element \"" + e.name + "\" has " +
           std::to_string(e.numChildren) + " children");
    size_t j = i + 1;
    for (int32_t k = 0; k < e.numChildren; ++k) {
      if (j >= schema.size())
        fail("corrupt metadata: schema element \"" + e.name +
             "\" lists more children than the "
             "schema holds");
      schema[i].children.push_back(j);
      j = build(j, depth + 1);
    }
    return j;
  };
  if (build(0, 0) != schema.size()) fail("corrupt metadata: schema tree does not cover the list");

  const auto& root = schema[0];
  auto topLevel = [&](const std::string& name) -> const SchemaElement* {
    for (size_t c : root.children)
      if (schema[c].name == name) return &schema[c];
    return nullptr;
  };
  const SchemaElement* top = topLevel("tokens");
  if (!top) top = topLevel("input_ids");
  if (!top) {
    std::string names;
    for (size_t c : root.children)
      names += (names.empty() ? "" : ", ") + schema[c].name;
    if (topLevel("text"))
      fail(
          "holds a \"text\" column but no \"tokens\" or \"input_ids\": text datasets need "
          "tokenising, which is not supported yet; use a pre-tokenised dataset (e.g. "
          "NeelNanda/c4-tokenized-2b) or tokenise it first");
    fail("has no \"tokens\" or \"input_ids\" column (columns: " + names + ")");
  }
  column_ = top->name;

  // Walk down to the leaf: every group on the way must have one child (a list, not a struct).
  std::vector<std::string> leafPath;
  const SchemaElement* node = top;
  int def = 0, rep = 0;
  for (;;) {
    leafPath.push_back(node->name);
    if (node->repetition == kOptional) ++def;
    if (node->repetition == kRepeated) {
      ++def;
      ++rep;
      defAtList_ = def;
    }
    if (node->children.empty()) break;
    if (node->children.size() != 1)
      fail("column \"" + column_ + "\" is not a list of integers (it is a struct)");
    node = &schema[node->children[0]];
  }
  maxDef_ = def;
  maxRep_ = rep;
  if (maxRep_ == 0)
    fail("column \"" + column_ + "\" holds one value per row, not a list of token ids");
  if (maxRep_ > 1) fail("column \"" + column_ + "\" is a nested list, not a list of token ids");
  physicalType_ = node->type;
  if (physicalType_ != kInt32 && physicalType_ != kInt64)
    fail("column \"" + column_ + "\" holds " + typeName(physicalType_) +
         " values; token ids must be INT32 or INT64");

  const int64_t dataEnd = static_cast<int64_t>(footerStart);
  for (size_t g = 0; g < groups.size(); ++g) {
    const ColumnChunkMeta* found = nullptr;
    for (const auto& c : groups[g].columns)
      if (c.path == leafPath) found = &c;
    const std::string where = "row group " + std::to_string(g) + " of column \"" + column_ + "\"";
    if (!found) fail("corrupt metadata: " + where + " has no column chunk");
    const auto& c = *found;
    if (c.external)
      fail(where + " lives in another file; external column chunks are not supported");
    if (c.type != physicalType_)
      fail("corrupt metadata: " + where + " has type " + typeName(c.type) + ", schema says " +
           typeName(physicalType_));
    if (!ParquetCodec::supported(c.codec))
      fail(where + " is compressed with " + ParquetCodec::name(c.codec) +
           ", which is not supported (only UNCOMPRESSED, SNAPPY, GZIP and ZSTD)");
    Chunk chunk;
    chunk.codec = c.codec;
    chunk.numValues = c.numValues;
    chunk.numRows = groups[g].numRows;
    chunk.start = c.dataPageOffset;
    if (c.dictionaryPageOffset > 0 && c.dictionaryPageOffset < c.dataPageOffset)
      chunk.start = c.dictionaryPageOffset;
    chunk.length = c.compressedSize;
    if (chunk.start < 4 || chunk.length <= 0 || chunk.length > dataEnd ||
        chunk.start > dataEnd - chunk.length || c.numValues < 0 || groups[g].numRows < 0)
      // Start and length, not [start, start + length): the sum of two corrupt int64s overflowed
      // (found by fuzz/fuzz_parquet; tests/fixtures/fuzz-regressions/parquet).
      fail("corrupt metadata: " + where + " claims " + std::to_string(chunk.length) +
           " bytes at byte " + std::to_string(chunk.start) + " with " +
           std::to_string(c.numValues) + " values, outside the " + std::to_string(dataEnd) +
           " bytes of column data");
    rowGroups_.push_back(chunk);
  }
}

bool ParquetReader::next(std::vector<int64_t>& tokens, bool& continuation) {
  continuation = false;
  if (ready_.empty() && !fill()) return false;
  tokens.swap(ready_.front());
  ready_.pop_front();
  return true;
}

bool ParquetReader::fill() {
  while (ready_.empty()) {
    if (!inChunk_) {
      if (group_ >= rowGroups_.size()) return false;
      const Chunk& c = rowGroups_[group_];
      pageOffset_ = c.start;
      chunkEnd_ = c.start + c.length;
      valuesSeen_ = 0;
      rowsInGroup_ = 0;
      haveDictionary_ = false;
      dictionary_.clear();
      inChunk_ = true;
    }
    if (valuesSeen_ >= rowGroups_[group_].numValues) {
      finishChunk();
      continue;
    }
    if (pageOffset_ >= chunkEnd_)
      fail("corrupt column chunk: row group " + std::to_string(group_) + " ends after " +
           std::to_string(valuesSeen_) + " of its " + std::to_string(rowGroups_[group_].numValues) +
           " values");
    readPage();
  }
  return true;
}

void ParquetReader::finishChunk() {
  if (rowOpen_) {
    ready_.push_back(std::move(partial_));
    partial_.clear();
    rowOpen_ = false;
    ++rowIndex_;
  }
  if (rowsInGroup_ != rowGroups_[group_].numRows)
    fail("corrupt column chunk: row group " + std::to_string(group_) + " holds " +
         std::to_string(rowsInGroup_) + " rows, its metadata says " +
         std::to_string(rowGroups_[group_].numRows));
  ++group_;
  inChunk_ = false;
}

void ParquetReader::decodeValues(const uint8_t* data, size_t size, int32_t encoding, size_t count,
                                 std::vector<int64_t>& out, const std::string& where) {
  if (encoding == kPlain) {
    const size_t width = physicalType_ == kInt32 ? 4 : 8;
    if (count > size / width)
      fail(where + ": " + std::to_string(count) + " PLAIN values need " +
           std::to_string(count * width) + " bytes, the page holds " + std::to_string(size));
    // Only now: a dictionary page's count is not capped, and a corrupt one (2^31 - 1 in a
    // 100-byte file) made this allocate 16 GiB before the check (see
    // tests/fixtures/fuzz-regressions/parquet).
    out.resize(count);
    for (size_t i = 0; i < count; ++i) {
      const uint8_t* p = data + i * width;
      if (width == 4) {
        out[i] = static_cast<int32_t>(readU32(p));
      } else {
        out[i] = static_cast<int64_t>(uint64_t(readU32(p)) | (uint64_t(readU32(p + 4)) << 32));
      }
    }
    return;
  }
  if (encoding == kPlainDictionary || encoding == kRleDictionary) {
    out.resize(count);  // data pages: count <= kMaxPageValues
    if (!haveDictionary_) fail(where + ": dictionary-encoded page but no dictionary page");
    if (count == 0) return;
    if (size < 1) fail(where + ": dictionary indices are missing");
    const int width = data[0];
    if (width > 32) fail(where + ": corrupt dictionary index bit width " + std::to_string(width));
    std::vector<uint32_t> idx;
    if (!decodeHybrid(data + 1, size - 1, width, count, idx))
      fail(where + ": dictionary indices end early (truncated or corrupt page)");
    for (size_t i = 0; i < count; ++i) {
      if (idx[i] >= dictionary_.size())
        fail(where + ": dictionary index " + std::to_string(idx[i]) + " is out of range (" +
             std::to_string(dictionary_.size()) + " entries)");
      out[i] = dictionary_[idx[i]];
    }
    return;
  }
  fail(where + ": values use " + encodingName(encoding) +
       ", which is not supported (only PLAIN and dictionary encodings)");
}

void ParquetReader::readPage() {
  const Chunk& chunk = rowGroups_[group_];
  const std::string where =
      "page at byte " + std::to_string(pageOffset_) + " (row group " + std::to_string(group_) + ")";
  // The header's size is unknown: decode from a small read, reading more if it runs out.
  const uint64_t available = static_cast<uint64_t>(chunkEnd_ - pageOffset_);
  uint64_t want = std::min<uint64_t>(available, 256);
  int32_t type = -1, uncompressed = -1, compressed = -1;
  int32_t numValues = -1, encoding = -1, levelEncoding = kRle, defLen = 0, repLen = 0;
  bool isCompressed = true;
  size_t headerLen = 0;
  for (;;) {
    const auto bytes = file_.read(static_cast<uint64_t>(pageOffset_), want, "page header");
    Thrift t(bytes.data(), bytes.size(), file_.path() + ": " + where + ": page header");
    try {
      t.beginStruct();
      Thrift::Field f;
      while (t.nextField(f)) {
        if (f.id == 1 && f.type == Thrift::kI32) {
          type = t.readI32();
        } else if (f.id == 2 && f.type == Thrift::kI32) {
          uncompressed = t.readI32();
        } else if (f.id == 3 && f.type == Thrift::kI32) {
          compressed = t.readI32();
        } else if ((f.id == 5 || f.id == 7 || f.id == 8) && f.type == Thrift::kStruct) {
          t.beginStruct();
          Thrift::Field g;
          while (t.nextField(g)) {
            if (g.id == 1 && g.type == Thrift::kI32) {
              numValues = t.readI32();
            } else if (f.id == 5 && g.id == 2 && g.type == Thrift::kI32) {
              encoding = t.readI32();
            } else if (f.id == 5 && (g.id == 3 || g.id == 4) && g.type == Thrift::kI32) {
              const int32_t e = t.readI32();
              if (e != kRle) levelEncoding = e;
            } else if (f.id == 7 && g.id == 2 && g.type == Thrift::kI32) {
              encoding = t.readI32();
            } else if (f.id == 8 && g.id == 4 && g.type == Thrift::kI32) {
              encoding = t.readI32();
            } else if (f.id == 8 && g.id == 5 && g.type == Thrift::kI32) {
              defLen = t.readI32();
            } else if (f.id == 8 && g.id == 6 && g.type == Thrift::kI32) {
              repLen = t.readI32();
            } else if (f.id == 8 && g.id == 7 &&
                       (g.type == Thrift::kBoolTrue || g.type == Thrift::kBoolFalse)) {
              isCompressed = t.readBool(g);
            } else {
              t.skip(g.type);
            }
          }
          t.endStruct();
        } else {
          t.skip(f.type);
        }
      }
      t.endStruct();
      headerLen = t.position();
      break;
    } catch (const Thrift::OutOfData&) {
      if (want >= available)
        fail("truncated or corrupt " + where + ": its header runs past the column chunk");
      want = std::min<uint64_t>(available, want * 16);
    }
  }
  if (uncompressed < 0 || compressed < 0)
    fail("corrupt " + where + ": negative or missing page sizes");
  if (static_cast<uint64_t>(compressed) > available - headerLen)
    fail("truncated or corrupt " + where + ": " + std::to_string(compressed) +
         " bytes of page data run past the column chunk");
  const uint64_t body = static_cast<uint64_t>(pageOffset_) + headerLen;
  pageOffset_ = static_cast<int64_t>(body) + compressed;

  if (type != kDataPage && type != kDataPageV2 && type != kDictionaryPage) return;  // index pages
  page_.resize(static_cast<size_t>(compressed));
  file_.read(body, page_.data(), page_.size(), "page data");
  const std::string context = file_.path() + ": " + where;

  if (type == kDictionaryPage) {
    if (haveDictionary_) fail("corrupt " + where + ": a second dictionary page");
    if (encoding != kPlain && encoding != kPlainDictionary)
      fail(where + ": dictionary page uses " + encodingName(encoding));
    if (numValues < 0) fail("corrupt " + where + ": negative dictionary size");
    ParquetCodec::decompress(chunk.codec, page_.data(), page_.size(),
                             static_cast<size_t>(uncompressed), scratch_, context);
    haveDictionary_ = true;  // set first: decodeValues(PLAIN) does not need it
    decodeValues(scratch_.data(), scratch_.size(), kPlain, static_cast<size_t>(numValues),
                 dictionary_, where);
    return;
  }

  if (numValues < 0 || numValues > kMaxPageValues || numValues > chunk.numValues - valuesSeen_)
    fail("corrupt " + where + ": " + std::to_string(numValues) +
         " values, but the column chunk "
         "has " +
         std::to_string(chunk.numValues - valuesSeen_) + " left");
  const size_t n = static_cast<size_t>(numValues);
  if (levelEncoding != kRle)
    fail(where + ": levels use " + encodingName(levelEncoding) +
         ", which is not supported (only RLE)");
  std::vector<uint32_t> reps, defs;
  const uint8_t* values = nullptr;
  size_t valuesSize = 0;
  auto levels = [&](const uint8_t* p, size_t len, int maxLevel, std::vector<uint32_t>& out,
                    const char* what) {
    if (!decodeHybrid(p, len, bitWidth(static_cast<uint32_t>(maxLevel)), n, out))
      fail("truncated or corrupt " + where + ": " + what + " levels end early");
    for (uint32_t v : out)
      if (v > static_cast<uint32_t>(maxLevel))
        fail("corrupt " + where + ": " + what + " level " + std::to_string(v) + " above " +
             std::to_string(maxLevel));
  };
  if (type == kDataPage) {
    ParquetCodec::decompress(chunk.codec, page_.data(), page_.size(),
                             static_cast<size_t>(uncompressed), scratch_, context);
    size_t pos = 0;
    for (int which = 0; which < 2; ++which) {
      const int maxLevel = which == 0 ? maxRep_ : maxDef_;
      if (maxLevel == 0) continue;
      if (scratch_.size() - pos < 4) fail("truncated or corrupt " + where + ": levels missing");
      const uint32_t len = readU32(scratch_.data() + pos);
      pos += 4;
      if (len > scratch_.size() - pos)
        fail("corrupt " + where + ": level data of " + std::to_string(len) +
             " bytes runs past the page");
      levels(scratch_.data() + pos, len, maxLevel, which == 0 ? reps : defs,
             which == 0 ? "repetition" : "definition");
      pos += len;
    }
    values = scratch_.data() + pos;
    valuesSize = scratch_.size() - pos;
  } else {
    if (repLen < 0 || defLen < 0 || static_cast<int64_t>(repLen) + defLen > compressed ||
        static_cast<int64_t>(repLen) + defLen > uncompressed)
      fail("corrupt " + where + ": level lengths " + std::to_string(repLen) + " + " +
           std::to_string(defLen) + " do not fit the page");
    if (maxRep_ > 0) levels(page_.data(), static_cast<size_t>(repLen), maxRep_, reps, "repetition");
    if (maxDef_ > 0)
      levels(page_.data() + repLen, static_cast<size_t>(defLen), maxDef_, defs, "definition");
    const size_t offset = static_cast<size_t>(repLen) + static_cast<size_t>(defLen);
    const size_t expected = static_cast<size_t>(uncompressed) - offset;
    ParquetCodec::decompress(isCompressed ? chunk.codec : ParquetCodec::kUncompressed,
                             page_.data() + offset, page_.size() - offset, expected, scratch_,
                             context);
    values = scratch_.data();
    valuesSize = scratch_.size();
  }

  size_t present = 0;
  for (size_t i = 0; i < n; ++i)
    if (maxDef_ == 0 || defs[i] == static_cast<uint32_t>(maxDef_)) ++present;
  std::vector<int64_t> decoded;
  decodeValues(values, valuesSize, encoding, present, decoded, where);

  size_t vi = 0;
  for (size_t i = 0; i < n; ++i) {
    const uint32_t r = maxRep_ ? reps[i] : 0;
    const uint32_t d = maxDef_ ? defs[i] : 0;
    if (r == 0) {
      if (rowOpen_) {
        ready_.push_back(std::move(partial_));
        partial_.clear();
        ++rowIndex_;
      }
      rowOpen_ = true;
      ++rowsInGroup_;
    } else if (!rowOpen_) {
      fail("corrupt " + where + ": the page continues a row that never started");
    }
    if (maxDef_ == 0 || d == static_cast<uint32_t>(maxDef_)) {
      const int64_t v = decoded[vi++];
      if (v < 0)
        fail("row " + std::to_string(rowIndex_) + " of column \"" + column_ + "\" holds token id " +
             std::to_string(v) + ": token ids must not be negative");
      partial_.push_back(v);
    } else if (d >= static_cast<uint32_t>(defAtList_)) {
      fail("row " + std::to_string(rowIndex_) + " of column \"" + column_ +
           "\" holds a null token id; token lists must not contain nulls");
    }
  }
  valuesSeen_ += numValues;
}

std::string ParquetReader::describe() const {
  return "parquet file " + file_.path() + " (" + std::to_string(numRows_) + " rows in " +
         std::to_string(rowGroups_.size()) + " row groups, column \"" + column_ + "\")";
}

}  // namespace sae
