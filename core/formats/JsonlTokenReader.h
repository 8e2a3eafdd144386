#pragma once
// JSON Lines token files: one document per line, {"tokens": [ids...]} (or "input_ids").
// Blank lines are skipped; errors name the file and the line number. Torch-free.
#include <cstdint>
#include <fstream>
#include <string>
#include <vector>

#include "formats/TokenDocumentReader.h"

namespace sae {

class JsonlTokenReader : public TokenDocumentReader {
 public:
  // Opens the file and checks its first document, so a wrong file fails before training.
  explicit JsonlTokenReader(const std::string& path);
  bool next(std::vector<int64_t>& tokens, bool& continuation) override;
  std::string describe() const override;

 private:
  bool readLine(std::vector<int64_t>& tokens);
  std::string path_;
  std::ifstream in_;
  int64_t line_ = 0;
  bool havePeek_ = false;
  bool peekOk_ = false;
  std::vector<int64_t> peek_;
};

}  // namespace sae
