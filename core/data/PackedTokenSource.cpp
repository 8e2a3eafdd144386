#include "data/PackedTokenSource.h"

#include <stdexcept>
#include <utility>

namespace sae {

PackedTokenSource::PackedTokenSource(std::unique_ptr<TokenDocumentReader> reader,
                                     int64_t contextSize, bool prependBos, int64_t bosTokenId,
                                     std::string name)
    : reader_(std::move(reader)),
      contextSize_(contextSize),
      prependBos_(prependBos),
      bos_(bosTokenId),
      name_(std::move(name)) {
  if (!reader_) throw std::runtime_error(name_ + ": no token reader");
  if (contextSize_ <= 0)
    throw std::runtime_error(name_ + ": context_size must be positive, got " +
                             std::to_string(contextSize_));
}

bool PackedTokenSource::startDocument() {
  // A file can be valid and still hold nothing but empty documents (a .npy of shape (10**17, 0),
  // parquet pages of empty lists): give up with a message instead of spinning for ever.
  constexpr int64_t kMaxEmptyInARow = 10'000'000;
  int64_t emptyInARow = 0;
  for (;;) {
    std::vector<int64_t> piece;
    bool continues = false;
    if (haveAhead_) {
      piece.swap(ahead_);
      continues = aheadContinues_;
      haveAhead_ = false;
    } else {
      if (readerDone_ || !reader_->next(piece, continues)) {
        readerDone_ = true;
        return false;
      }
    }
    // Only a stream's pieces continue each other, and a stream is never discarded, so a piece
    // that arrives here always starts a document.
    (void)continues;
    ++documents_;
    doc_.swap(piece);
    pos_ = 0;
    haveDoc_ = true;
    docOpen_ = true;
    docIsStream_ = reader_->streams();
    buffer(0);
    if (!prependBos_ && remaining() > 0 && doc_[pos_] == bos_) ++pos_;
    if (remaining() == 0) buffer(0);
    if (remaining() == 0) {
      haveDoc_ = false;  // an empty (or null) document adds nothing, as in SAELens
      if (++emptyInARow >= kMaxEmptyInARow)
        throw std::runtime_error(name_ + ": " + std::to_string(emptyInARow) +
                                 " empty documents in a row (" + std::to_string(documents_) +
                                 " read): the dataset holds no tokens here; check the file");
      continue;
    }
    return true;
  }
}

void PackedTokenSource::buffer(size_t need) {
  while (docOpen_ && remaining() <= need) {
    if (!haveAhead_) {
      if (readerDone_ || !reader_->next(ahead_, aheadContinues_)) {
        readerDone_ = true;
        docOpen_ = false;
        return;
      }
      haveAhead_ = true;
    }
    if (!aheadContinues_) {
      docOpen_ = false;  // the next piece starts a new document
      return;
    }
    // Append the continuation, dropping the consumed prefix first so memory stays bounded.
    doc_.erase(doc_.begin(), doc_.begin() + static_cast<std::ptrdiff_t>(pos_));
    pos_ = 0;
    doc_.insert(doc_.end(), ahead_.begin(), ahead_.end());
    ahead_.clear();
    haveAhead_ = false;
  }
}

std::vector<int64_t> PackedTokenSource::nextRows(int64_t rows) {
  if (rows < 0) throw std::runtime_error(name_ + ": negative row count requested");
  const size_t C = static_cast<size_t>(contextSize_);
  std::vector<int64_t> out;
  out.reserve(static_cast<size_t>(rows) * C);
  std::vector<int64_t> row;  // SAELens's current_batch: local to one call
  row.reserve(C);
  int64_t done = 0;
  while (done < rows) {
    if (!haveDoc_ && !startDocument())
      throw std::runtime_error(
          name_ + ": ran out of tokens after " + std::to_string(rowsServed_ + done) + " rows of " +
          std::to_string(contextSize_) + " tokens (" + std::to_string(documents_) +
          " documents read): the dataset is smaller than the run needs; lower "
          "training_tokens or use a larger dataset");
    while (haveDoc_ && done < rows) {
      const size_t space = C - row.size();
      buffer(space);
      if (!docOpen_ && remaining() <= space) {
        // The rest fits: the row is closed only when a later document overflows it.
        row.insert(row.end(), doc_.begin() + static_cast<std::ptrdiff_t>(pos_), doc_.end());
        haveDoc_ = false;
        break;
      }
      row.insert(row.end(), doc_.begin() + static_cast<std::ptrdiff_t>(pos_),
                 doc_.begin() + static_cast<std::ptrdiff_t>(pos_ + space));
      pos_ += space;
      if (prependBos_ && doc_[pos_] != bos_) {
        if (pos_ > 0)
          doc_[--pos_] = bos_;
        else
          doc_.insert(doc_.begin(), bos_);
      }
      out.insert(out.end(), row.begin(), row.end());
      row.clear();
      ++done;
    }
  }
  // SAELens drops the rest of the document that completed the batch; a stream keeps it.
  if (haveDoc_ && !docIsStream_) haveDoc_ = false;
  rowsServed_ += rows;
  if (!calls_.empty() && calls_.back().first == rows)
    ++calls_.back().second;
  else
    calls_.emplace_back(rows, 1);
  return out;
}

void PackedTokenSource::replayCalls(const std::vector<std::pair<int64_t, int64_t>>& history) {
  if (!calls_.empty())
    throw std::runtime_error(name_ + ": a resumed token stream must be replayed before use");
  for (const auto& [rows, calls] : history) {
    if (rows < 0 || calls < 0)
      throw std::runtime_error(name_ + ": bad call history in the resume state (" +
                               std::to_string(rows) + " rows x " + std::to_string(calls) + ")");
    for (int64_t i = 0; i < calls; ++i)
      nextRows(rows);
  }
}

std::string PackedTokenSource::describe() const {
  return reader_->describe() + ", packed into rows of " + std::to_string(contextSize_) + " tokens" +
         (prependBos_ ? " (BOS " + std::to_string(bos_) + ")" : " (no BOS)");
}

}  // namespace sae
