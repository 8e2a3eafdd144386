// libFuzzer target: TokenizerDecoder::parse (Hugging Face tokenizer.json, byte-level BPE) and the
// decoding it enables. A thrown std::exception with a message is the correct answer to bad input;
// a crash, abort, hang or sanitizer report is a bug.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <string>
#include <vector>

#include "formats/TokenizerDecoder.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  try {
    const auto decoder = sae::TokenizerDecoder::parse(text, "fuzz tokenizer.json");
    // Decode what a viewer would: every present token alone and all of them joined (ids the
    // vocabulary skips throw, which is fine), plus the special-token lookups.
    const int64_t n = std::min<int64_t>(decoder.vocabSize(), 4096);
    std::vector<int64_t> present;
    for (int64_t id = 0; id < n; ++id) {
      try {
        (void)decoder.tokenText(id);
        (void)decoder.tokenId(decoder.rawToken(id));
        present.push_back(id);
      } catch (const std::exception&) {
      }
      (void)decoder.isSpecial(id);
      (void)decoder.isAdded(id);
    }
    (void)decoder.decode(present, false);
    (void)decoder.decode(present, true);
    (void)decoder.bosId();
    (void)decoder.eosId();
    (void)decoder.padId();
    (void)decoder.decode({-1});
  } catch (const std::exception&) {
  }
  return 0;
}
