#pragma once
// CRC-32C (Castagnoli) as TFRecord files use it: reflected polynomial 0x82F63B78, initial value
// and final xor 0xFFFFFFFF, plus TensorFlow's "masked" form stored in the records.
#include <cstddef>
#include <cstdint>
#include <string>

namespace sae {

class Crc32c {
 public:
  // The CRC of `size` bytes. Pass a previous result as `crc` to continue over more bytes
  // (value(ab) == value(b, value(a))).
  static uint32_t value(const void* data, size_t size, uint32_t crc = 0);
  static uint32_t value(const std::string& bytes) { return value(bytes.data(), bytes.size()); }

  // TensorFlow stores CRCs rotated and offset, because a CRC computed over bytes that contain
  // CRCs is weak: ((crc >> 15) | (crc << 17)) + 0xA282EAD8 (mod 2^32).
  static uint32_t mask(uint32_t crc);
  static uint32_t unmask(uint32_t masked);
};

}  // namespace sae
