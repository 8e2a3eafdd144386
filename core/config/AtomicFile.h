#pragma once
#include <string>

namespace sae {

// Replaces a file all at once: a reader (or a crash mid-write) sees either the old bytes or the
// new ones, never a half-written file. Used for configs, checkpoints' metadata and run logs.
class AtomicFile {
 public:
  // Writes `bytes` to `path + ".tmp-<pid>"`, fsyncs it, then renames it over `path`. Missing
  // parent folders are created. Throws std::runtime_error naming the path and the OS error.
  static void write(const std::string& path, const std::string& bytes);
};

}  // namespace sae
