#pragma once
// Appends TFRecord records to a file: u64 length | u32 masked CRC-32C of the length bytes |
// data | u32 masked CRC-32C of the data, all little-endian. A reader stops at the first
// incomplete record, so a killed writer leaves a file that is readable up to its last whole
// record.
#include <cstdint>
#include <fstream>
#include <string>

namespace sae {

class TfRecordWriter {
 public:
  // Creates (or truncates) the file; throws std::runtime_error naming the path on failure.
  explicit TfRecordWriter(const std::string& path);

  // The framed bytes of one record (what write() appends).
  static std::string frame(const std::string& data);

  // Buffered; call flush() to hand the bytes to the OS. Throws naming the path when the stream
  // fails (disk full, file size limit, folder removed); the file is then cut back to the
  // records of the last successful flush, so it never ends in half a record.
  void write(const std::string& data);
  void flush();

  const std::string& path() const { return path_; }

 private:
  void check(const char* what);

  std::string path_;
  std::ofstream out_;
  std::uintmax_t committedBytes_ = 0;  // file size after the last successful flush
  std::uintmax_t pendingBytes_ = 0;    // bytes written since then
};

}  // namespace sae
