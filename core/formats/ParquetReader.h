#pragma once
// Reads the token column of a Hugging Face parquet shard (`tokens`, else `input_ids`: a list of
// INT32/INT64) one document per row, page by page, with no Arrow library: Thrift compact
// FileMetaData and PageHeaders, PLAIN and dictionary (PLAIN_DICTIONARY / RLE_DICTIONARY)
// values, RLE/bit-packed repetition and definition levels, data pages v1 and v2, codecs
// UNCOMPRESSED, SNAPPY, GZIP and ZSTD, any number of row groups (formats.md §4). A null or
// empty list is an empty document; a null token inside a list is an error. Every length is
// checked against the file, so a truncated or corrupt file gives an error naming it.
// Torch-free.
#include <cstdint>
#include <deque>
#include <string>
#include <vector>

#include "formats/BinaryFile.h"
#include "formats/TokenDocumentReader.h"

namespace sae {

class ParquetReader : public TokenDocumentReader {
 public:
  // Reads the footer and finds the token column. Throws std::runtime_error naming the file when
  // it is not parquet, is truncated, has no token column (a `text` column gets its own message)
  // or uses an unsupported type, encoding or codec.
  explicit ParquetReader(const std::string& path);
  ~ParquetReader() override;
  bool next(std::vector<int64_t>& tokens, bool& continuation) override;
  std::string describe() const override;

  const std::string& columnName() const { return column_; }
  int64_t numRows() const { return numRows_; }
  size_t numRowGroups() const { return rowGroups_.size(); }
  // true for INT32 values, false for INT64.
  bool int32Values() const { return physicalType_ == 1; }

  struct Chunk {
    int32_t codec = 0;
    int64_t numValues = 0;
    int64_t start = 0;  // first page (dictionary page when there is one)
    int64_t length = 0;
    int64_t numRows = 0;
  };

 private:
  // Decodes pages until at least one finished row is queued; false at the end of the file.
  bool fill();
  void readPage();
  void finishChunk();
  void decodeValues(const uint8_t* data, size_t size, int32_t encoding, size_t count,
                    std::vector<int64_t>& out, const std::string& where);
  [[noreturn]] void fail(const std::string& what) const;

  BinaryFile file_;
  std::string column_;
  int32_t physicalType_ = 0;
  int maxDef_ = 0, maxRep_ = 0, defAtList_ = 0;
  int64_t numRows_ = 0;
  std::vector<Chunk> rowGroups_;
  // Position in the file.
  size_t group_ = 0;
  bool inChunk_ = false;
  int64_t pageOffset_ = 0, chunkEnd_ = 0, valuesSeen_ = 0, rowsInGroup_ = 0;
  std::vector<int64_t> dictionary_;
  bool haveDictionary_ = false;
  // Row assembly across pages.
  std::vector<int64_t> partial_;
  bool rowOpen_ = false;
  int64_t rowIndex_ = 0;  // rows finished in the file so far
  std::deque<std::vector<int64_t>> ready_;
  std::vector<uint8_t> page_, scratch_;
};

}  // namespace sae
