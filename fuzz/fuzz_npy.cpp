// libFuzzer target: NpyReader (token arrays saved with np.save). A thrown std::exception with a
// message is the correct answer to bad input; a crash, abort, hang or sanitizer report is a bug.

#include <cstddef>
#include <cstdint>
#include <exception>
#include <vector>

#include "FuzzInputFile.h"
#include "formats/NpyReader.h"

namespace {
// A consumer reads a bounded number of documents per call; an array of (10^17, 0) legitimately
// holds that many empty rows, so the harness stops where a training run would long have stopped.
constexpr int kMaxDocuments = 1 << 16;
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static sae::fuzz::FuzzInputFile file("tokens.npy");
  const std::string& path = file.write(data, size);
  try {
    sae::NpyReader reader(path);
    (void)reader.describe();
    std::vector<int64_t> tokens;
    bool continuation = false;
    for (int i = 0; i < kMaxDocuments && reader.next(tokens, continuation); ++i) {
    }
  } catch (const std::exception&) {
  }
  return 0;
}
