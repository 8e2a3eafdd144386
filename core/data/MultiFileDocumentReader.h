#pragma once
// Several token files read one after another (a folder of parquet shards in name order, ...).
// Every file is opened, and so checked, up front; each file's first document starts a new
// document. Torch-free.
#include <memory>
#include <string>
#include <vector>

#include "formats/TokenDocumentReader.h"

namespace sae {

class MultiFileDocumentReader : public TokenDocumentReader {
 public:
  // `readers` is not empty; `what` names the whole set in describe(), e.g. the folder.
  MultiFileDocumentReader(std::vector<std::unique_ptr<TokenDocumentReader>> readers,
                          std::string what);
  bool next(std::vector<int64_t>& tokens, bool& continuation) override;
  bool streams() const override;
  std::string describe() const override;

 private:
  std::vector<std::unique_ptr<TokenDocumentReader>> readers_;
  std::string what_;
  size_t current_ = 0;
};

}  // namespace sae
