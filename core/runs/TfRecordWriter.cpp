#include "runs/TfRecordWriter.h"

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <stdexcept>
#include <system_error>

#include "runs/Crc32c.h"

namespace sae {

namespace {

void appendLittleEndian(std::string& out, uint64_t value, int bytes) {
  for (int i = 0; i < bytes; ++i)
    out.push_back(static_cast<char>((value >> (8 * i)) & 0xFFu));
}

}  // namespace

TfRecordWriter::TfRecordWriter(const std::string& path)
    : path_(path), out_(path, std::ios::binary | std::ios::trunc) {
  if (!out_) {
    throw std::runtime_error("cannot create event file '" + path + "': " + std::strerror(errno) +
                             "; check that the run folder exists and is writable");
  }
}

std::string TfRecordWriter::frame(const std::string& data) {
  std::string record;
  record.reserve(data.size() + 16);
  appendLittleEndian(record, data.size(), 8);
  const uint32_t lengthCrc = Crc32c::mask(Crc32c::value(record.data(), 8));
  appendLittleEndian(record, lengthCrc, 4);
  record += data;
  appendLittleEndian(record, Crc32c::mask(Crc32c::value(data)), 4);
  return record;
}

void TfRecordWriter::write(const std::string& data) {
  const std::string record = frame(data);
  out_.write(record.data(), static_cast<std::streamsize>(record.size()));
  check("write to");
  pendingBytes_ += record.size();
}

void TfRecordWriter::flush() {
  out_.flush();
  check("flush");
  committedBytes_ += pendingBytes_;
  pendingBytes_ = 0;
}

void TfRecordWriter::check(const char* what) {
  if (!out_) {
    const int error = errno;
    if (out_.is_open()) {
      // Part of a record may have reached the file: cut back to the last whole flush.
      out_.close();
      std::error_code ec;
      std::filesystem::resize_file(path_, committedBytes_, ec);
    }
    throw std::runtime_error(std::string("cannot ") + what + " event file '" + path_ +
                             "' (disk full or folder removed?): " + std::strerror(error));
  }
}

}  // namespace sae
