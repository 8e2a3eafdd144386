#pragma once
// A bounds-checked decoder for the Thrift compact protocol, just enough for parquet's
// FileMetaData and PageHeader (apache/thrift doc/specs/thrift-compact-protocol.md). Every read
// checks the remaining bytes, list sizes are checked against them before anything is allocated
// and nesting is limited, so corrupt input gives an error, never a crash or a hang. Torch-free.
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

namespace sae {

class ThriftCompactDecoder {
 public:
  enum Type : uint8_t {
    kStop = 0,
    kBoolTrue = 1,
    kBoolFalse = 2,
    kByte = 3,
    kI16 = 4,
    kI32 = 5,
    kI64 = 6,
    kDouble = 7,
    kBinary = 8,
    kList = 9,
    kSet = 10,
    kMap = 11,
    kStruct = 12
  };
  struct Field {
    int16_t id = 0;
    uint8_t type = kStop;
  };
  // Thrown when the input ends inside a value; callers reading a page header from a partial
  // buffer catch it to read more bytes.
  struct OutOfData : std::runtime_error {
    using std::runtime_error::runtime_error;
  };

  // `context` (e.g. "x.parquet: page header at byte 4") starts every error message.
  ThriftCompactDecoder(const uint8_t* data, size_t size, std::string context);

  void beginStruct();
  void endStruct();
  // Reads the next field header of the current struct; false at its STOP byte.
  bool nextField(Field& field);
  bool readBool(const Field& field);  // a struct field's bool lives in its header
  int32_t readI32();
  int64_t readI64();
  std::string readBinary();
  // Returns the element count; `elementType` receives the element type.
  uint32_t readListHeader(uint8_t& elementType);
  // Skips one value of `type` (unknown fields, statistics, ...).
  void skip(uint8_t type);
  size_t position() const { return pos_; }
  [[noreturn]] void fail(const std::string& what) const;

 private:
  uint64_t readVarint();
  uint8_t readByte();
  void skipValue(uint8_t type, int depth);
  const uint8_t* data_;
  size_t size_;
  size_t pos_ = 0;
  std::string context_;
  std::vector<int16_t> lastField_;
};

}  // namespace sae
