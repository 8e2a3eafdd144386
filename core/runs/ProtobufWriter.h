#pragma once
// Builds one protocol-buffer message by hand, field by field, in the wire format
// (https://protobuf.dev/programming-guides/encoding/). Enough for TensorBoard's Event, Summary
// and HistogramProto without a dependency on libprotobuf or generated code.
#include <cstdint>
#include <string>
#include <vector>

namespace sae {

class ProtobufWriter {
 public:
  // Wire types: the low 3 bits of every field key.
  static constexpr int kVarint = 0;
  static constexpr int kFixed64 = 1;
  static constexpr int kLengthDelimited = 2;
  static constexpr int kFixed32 = 5;

  // Base-128 little-endian groups of 7 bits, high bit set on all but the last byte. Negative
  // int64 values are sign-extended to 64 bits (10 bytes), as protobuf does for int64.
  static std::string varint(uint64_t value);

  // Each appends the key ((field << 3) | wire type) and then the value.
  void addVarint(int field, uint64_t value);
  void addInt64(int field, int64_t value) { addVarint(field, static_cast<uint64_t>(value)); }
  void addDouble(int field, double value);  // fixed64, little-endian IEEE-754
  void addFloat(int field, float value);    // fixed32, little-endian IEEE-754
  // Strings, bytes and embedded messages: varint length, then the bytes.
  void addBytes(int field, const std::string& bytes);
  void addMessage(int field, const ProtobufWriter& message) { addBytes(field, message.bytes()); }
  // A packed repeated double field: one length-delimited field holding 8 bytes per value.
  void addPackedDoubles(int field, const std::vector<double>& values);

  const std::string& bytes() const { return bytes_; }

 private:
  void addKey(int field, int wireType);
  void appendFixed64(uint64_t bits);

  std::string bytes_;
};

}  // namespace sae
