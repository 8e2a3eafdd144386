#include "runs/ProtobufWriter.h"

#include <cstring>

namespace sae {

std::string ProtobufWriter::varint(uint64_t value) {
  std::string out;
  while (value >= 0x80u) {
    out.push_back(static_cast<char>((value & 0x7Fu) | 0x80u));
    value >>= 7;
  }
  out.push_back(static_cast<char>(value));
  return out;
}

void ProtobufWriter::addKey(int field, int wireType) {
  bytes_ += varint((static_cast<uint64_t>(field) << 3) | static_cast<uint64_t>(wireType));
}

void ProtobufWriter::appendFixed64(uint64_t bits) {
  // Byte by byte, so the output is little-endian whatever the host's order.
  for (int i = 0; i < 8; ++i)
    bytes_.push_back(static_cast<char>((bits >> (8 * i)) & 0xFFu));
}

void ProtobufWriter::addVarint(int field, uint64_t value) {
  addKey(field, kVarint);
  bytes_ += varint(value);
}

void ProtobufWriter::addDouble(int field, double value) {
  addKey(field, kFixed64);
  uint64_t bits = 0;
  std::memcpy(&bits, &value, sizeof bits);
  appendFixed64(bits);
}

void ProtobufWriter::addFloat(int field, float value) {
  addKey(field, kFixed32);
  uint32_t bits = 0;
  std::memcpy(&bits, &value, sizeof bits);
  for (int i = 0; i < 4; ++i)
    bytes_.push_back(static_cast<char>((bits >> (8 * i)) & 0xFFu));
}

void ProtobufWriter::addBytes(int field, const std::string& bytes) {
  addKey(field, kLengthDelimited);
  bytes_ += varint(bytes.size());
  bytes_ += bytes;
}

void ProtobufWriter::addPackedDoubles(int field, const std::vector<double>& values) {
  addKey(field, kLengthDelimited);
  bytes_ += varint(values.size() * 8);
  for (double value : values) {
    uint64_t bits = 0;
    std::memcpy(&bits, &value, sizeof bits);
    appendFixed64(bits);
  }
}

}  // namespace sae
