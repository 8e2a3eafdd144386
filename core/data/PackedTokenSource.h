#pragma once
// Packs documents into rows of context_size tokens exactly as SAELens's get_batch_tokens does
// (saelens-semantics.md §4): documents are concatenated with no separator; a document that
// overflows a row continues at the start of the next row, behind a BOS (when prepend_bos and
// the remainder does not already start with BOS); with prepend_bos false, a document's leading
// BOS is stripped. One nextRows(n) call is one get_batch_tokens(n) call, quirks included: a
// document that exactly fills a row only closes it when the next document arrives (which then
// gets a BOS), and the rest of the document that completes the batch is thrown away.
// Exception: a document handed out in pieces (a 1-D .npy or .bin token stream) keeps its rest
// for the next call, so the whole stream is used as if get_batch_tokens were called once.
// Torch-free.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "data/TokenSource.h"
#include "formats/TokenDocumentReader.h"

namespace sae {

class PackedTokenSource : public TokenSource {
 public:
  // `name` (the dataset path or hub name) goes into every error and describe().
  PackedTokenSource(std::unique_ptr<TokenDocumentReader> reader, int64_t contextSize,
                    bool prependBos, int64_t bosTokenId, std::string name);
  int64_t contextSize() const override { return contextSize_; }
  // Throws std::runtime_error naming the dataset when the documents run out.
  std::vector<int64_t> nextRows(int64_t rows) override;
  std::string describe() const override;
  std::vector<std::pair<int64_t, int64_t>> callHistory() const override { return calls_; }
  void replayCalls(const std::vector<std::pair<int64_t, int64_t>>& history) override;
  // Documents started so far (SAELens's n_dataset_processed, counting skipped empty ones).
  int64_t documentsRead() const { return documents_; }

 private:
  // Starts the next non-empty document; false when the reader has none left.
  bool startDocument();
  // Makes sure more than `need` tokens of the current document are buffered, or all of them.
  void buffer(size_t need);
  size_t remaining() const { return doc_.size() - pos_; }

  std::unique_ptr<TokenDocumentReader> reader_;
  int64_t contextSize_;
  bool prependBos_;
  int64_t bos_;
  std::string name_;
  // The current document: doc_[pos_..] are its unconsumed buffered tokens; more pieces may
  // still follow in the reader while docOpen_.
  std::vector<int64_t> doc_;
  size_t pos_ = 0;
  bool haveDoc_ = false;
  bool docOpen_ = false;
  bool docIsStream_ = false;
  // A piece read ahead while looking for the end of a document in pieces.
  std::vector<int64_t> ahead_;
  bool haveAhead_ = false;
  bool aheadContinues_ = false;
  bool readerDone_ = false;
  int64_t documents_ = 0;
  int64_t rowsServed_ = 0;
  std::vector<std::pair<int64_t, int64_t>> calls_;  // (rows, calls), run-length encoded
};

}  // namespace sae
