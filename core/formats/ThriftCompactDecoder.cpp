#include "formats/ThriftCompactDecoder.h"

#include <utility>

namespace sae {

namespace {
constexpr int kMaxDepth = 32;
int64_t unzigzag(uint64_t v) {
  return static_cast<int64_t>((v >> 1) ^ (~(v & 1) + 1));
}
}  // namespace

ThriftCompactDecoder::ThriftCompactDecoder(const uint8_t* data, size_t size, std::string context)
    : data_(data), size_(size), context_(std::move(context)) {}

void ThriftCompactDecoder::fail(const std::string& what) const {
  throw std::runtime_error(context_ + ": corrupt metadata at byte " + std::to_string(pos_) + ": " +
                           what);
}

uint8_t ThriftCompactDecoder::readByte() {
  if (pos_ >= size_)
    throw OutOfData(context_ + ": metadata ends unexpectedly after " + std::to_string(size_) +
                    " bytes (truncated or corrupt)");
  return data_[pos_++];
}

uint64_t ThriftCompactDecoder::readVarint() {
  uint64_t result = 0;
  for (int shift = 0; shift < 70; shift += 7) {
    const uint8_t b = readByte();
    result |= uint64_t(b & 0x7F) << shift;
    if ((b & 0x80) == 0) return result;
  }
  fail("varint longer than 10 bytes");
}

void ThriftCompactDecoder::beginStruct() {
  if (lastField_.size() >= kMaxDepth) fail("structs nested too deeply");
  lastField_.push_back(0);
}

void ThriftCompactDecoder::endStruct() {
  if (!lastField_.empty()) lastField_.pop_back();
}

bool ThriftCompactDecoder::nextField(Field& field) {
  const uint8_t header = readByte();
  if (header == kStop) return false;
  field.type = header & 0x0F;
  const int delta = header >> 4;
  int16_t& last = lastField_.back();
  if (delta != 0) {
    field.id = static_cast<int16_t>(last + delta);
  } else {
    const int64_t id = unzigzag(readVarint());
    if (id < INT16_MIN || id > INT16_MAX) fail("field id out of range");
    field.id = static_cast<int16_t>(id);
  }
  if (field.type > kStruct) fail("unknown field type " + std::to_string(field.type));
  last = field.id;
  return true;
}

bool ThriftCompactDecoder::readBool(const Field& field) {
  if (field.type == kBoolTrue) return true;
  if (field.type == kBoolFalse) return false;
  fail("expected a bool field, found type " + std::to_string(field.type));
}

int32_t ThriftCompactDecoder::readI32() {
  const int64_t v = unzigzag(readVarint());
  if (v < INT32_MIN || v > INT32_MAX) fail("i32 value out of range");
  return static_cast<int32_t>(v);
}

int64_t ThriftCompactDecoder::readI64() {
  return unzigzag(readVarint());
}

std::string ThriftCompactDecoder::readBinary() {
  const uint64_t n = readVarint();
  if (n > size_ - pos_)
    throw OutOfData(context_ + ": a string of " + std::to_string(n) +
                    " bytes runs past the end of the metadata (truncated or corrupt)");
  std::string s(reinterpret_cast<const char*>(data_ + pos_), n);
  pos_ += n;
  return s;
}

uint32_t ThriftCompactDecoder::readListHeader(uint8_t& elementType) {
  const uint8_t header = readByte();
  elementType = header & 0x0F;
  uint64_t n = header >> 4;
  if (n == 15) n = readVarint();
  // Every element takes at least one byte, so a larger count cannot be real.
  if (n > size_ - pos_)
    throw OutOfData(context_ + ": a list of " + std::to_string(n) +
                    " elements runs past the end of the metadata (truncated or corrupt)");
  return static_cast<uint32_t>(n);
}

void ThriftCompactDecoder::skip(uint8_t type) {
  skipValue(type, 0);
}

void ThriftCompactDecoder::skipValue(uint8_t type, int depth) {
  if (depth > kMaxDepth) fail("values nested too deeply");
  switch (type) {
    case kBoolTrue:
    case kBoolFalse:
      return;  // a field's bool is in its header
    case kByte:
      readByte();
      return;
    case kI16:
    case kI32:
    case kI64:
      readVarint();
      return;
    case kDouble:
      for (int i = 0; i < 8; ++i)
        readByte();
      return;
    case kBinary:
      readBinary();
      return;
    case kList:
    case kSet: {
      uint8_t elem = 0;
      const uint32_t n = readListHeader(elem);
      for (uint32_t i = 0; i < n; ++i) {
        if (elem == kBoolTrue || elem == kBoolFalse)
          readByte();  // list bools take one byte each
        else
          skipValue(elem, depth + 1);
      }
      return;
    }
    case kMap: {
      const uint64_t n = readVarint();
      if (n == 0) return;
      if (n > size_ - pos_) fail("map size runs past the end of the metadata");
      const uint8_t kv = readByte();
      for (uint64_t i = 0; i < n; ++i) {
        for (uint8_t t : {uint8_t(kv >> 4), uint8_t(kv & 0x0F)}) {
          if (t == kBoolTrue || t == kBoolFalse)
            readByte();
          else
            skipValue(t, depth + 1);
        }
      }
      return;
    }
    case kStruct: {
      beginStruct();
      Field f;
      while (nextField(f))
        skipValue(f.type, depth + 1);
      endStruct();
      return;
    }
    default:
      fail("cannot skip a value of unknown type " + std::to_string(type));
  }
}

}  // namespace sae
