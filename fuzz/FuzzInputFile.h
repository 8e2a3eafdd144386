#pragma once

// The readers under test take a file path (they stat, seek and reopen the file), so each fuzz
// input is written to one scratch file per process and per target; tmpfs (/dev/shm) keeps that
// cheap. The file is removed when the process exits normally.

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <stdexcept>
#include <string>

namespace sae::fuzz {

class FuzzInputFile {
 public:
  explicit FuzzInputFile(const std::string& fileName) {
    const char* shm = "/dev/shm";
    const std::string base = access(shm, W_OK) == 0 ? shm : "/tmp";
    dir_ = base + "/saewb-fuzz-" + std::to_string(getpid());
    mkdir(dir_);
    path_ = dir_ + "/" + fileName;
  }
  ~FuzzInputFile() {
    std::remove(path_.c_str());
    rmdir(dir_.c_str());
  }
  FuzzInputFile(const FuzzInputFile&) = delete;
  FuzzInputFile& operator=(const FuzzInputFile&) = delete;

  // Replaces the file's contents with the input and returns its path.
  const std::string& write(const uint8_t* data, size_t size) { return writeFrom(0, data, size); }

  // Keeps the file's first `offset` bytes (written by an earlier call), replaces the rest with
  // the data and returns the path: a large fixed prefix is then written once, not per input.
  const std::string& writeFrom(size_t offset, const uint8_t* data, size_t size) {
    const int fd = open(path_.c_str(), O_WRONLY | O_CREAT, 0600);
    if (fd < 0) abort();  // the harness itself is broken: stop rather than fuzz nothing
    size_t done = 0;
    while (done < size) {
      const ssize_t n = pwrite(fd, data + done, size - done, static_cast<off_t>(offset + done));
      if (n <= 0) abort();
      done += static_cast<size_t>(n);
    }
    if (ftruncate(fd, static_cast<off_t>(offset + size)) != 0) abort();
    close(fd);
    return path_;
  }

 private:
  static void mkdir(const std::string& dir) {
    if (::mkdir(dir.c_str(), 0700) != 0 && access(dir.c_str(), W_OK) != 0) abort();
  }
  std::string dir_;
  std::string path_;
};

}  // namespace sae::fuzz
