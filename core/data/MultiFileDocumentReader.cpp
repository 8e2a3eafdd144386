#include "data/MultiFileDocumentReader.h"

#include <stdexcept>
#include <utility>

namespace sae {

MultiFileDocumentReader::MultiFileDocumentReader(
    std::vector<std::unique_ptr<TokenDocumentReader>> readers, std::string what)
    : readers_(std::move(readers)), what_(std::move(what)) {
  if (readers_.empty()) throw std::runtime_error(what_ + ": no token files");
}

bool MultiFileDocumentReader::next(std::vector<int64_t>& tokens, bool& continuation) {
  while (current_ < readers_.size()) {
    if (readers_[current_]->next(tokens, continuation)) return true;
    // Release the finished file (its buffers and handle) before moving on.
    readers_[current_].reset();
    ++current_;
    if (current_ < readers_.size()) {
      // A new file never continues the previous file's document.
      if (readers_[current_]->next(tokens, continuation)) {
        continuation = false;
        return true;
      }
    }
  }
  return false;
}

bool MultiFileDocumentReader::streams() const {
  for (const auto& r : readers_)
    if (r) return r->streams();
  return false;
}

std::string MultiFileDocumentReader::describe() const {
  std::string first;
  for (const auto& r : readers_)
    if (r) {
      first = r->describe();
      break;
    }
  return what_ + " (" + std::to_string(readers_.size()) + " files; first: " + first + ")";
}

}  // namespace sae
