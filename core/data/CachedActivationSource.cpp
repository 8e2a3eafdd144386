#include "data/CachedActivationSource.h"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <stdexcept>
#include <utility>

#include "formats/Safetensors.h"

namespace sae {

namespace {

constexpr const char* kKey = "activations";

std::string shapeString(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i)
    s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

// 1234567 -> "1.2M": describe() is one line in a log.
std::string compactCount(int64_t n) {
  char buf[32];
  if (n >= 1'000'000'000) {
    std::snprintf(buf, sizeof buf, "%.1fB", n / 1e9);
  } else if (n >= 1'000'000) {
    std::snprintf(buf, sizeof buf, "%.1fM", n / 1e6);
  } else if (n >= 10'000) {
    std::snprintf(buf, sizeof buf, "%.1fk", n / 1e3);
  } else {
    std::snprintf(buf, sizeof buf, "%lld", static_cast<long long>(n));
  }
  return buf;
}

}  // namespace

CachedActivationSource::CachedActivationSource(const std::string& folder, int64_t dIn,
                                               int64_t layerIndex, int64_t trainingTokens,
                                               const DataShard& shard)
    : folder_(folder),
      dIn_(dIn),
      layerIndex_(layerIndex),
      trainingTokens_(trainingTokens),
      shard_(shard) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (!fs::is_directory(folder, ec)) {
    throw std::runtime_error("cached activations folder '" + folder + "' does not exist");
  }
  if (dIn <= 0) throw std::runtime_error("cached activations: d_in must be positive");
  if (layerIndex < 0) throw std::runtime_error("cached activations: layer index must be >= 0");
  // SAELens opens {folder}/0.safetensors, 1.safetensors, ... until one is missing.
  for (size_t i = 0;; ++i) {
    const std::string file = (fs::path(folder) / (std::to_string(i) + ".safetensors")).string();
    if (!fs::exists(file, ec)) break;
    files_.push_back(file);
  }
  if (files_.empty()) {
    throw std::runtime_error("cached activations folder '" + folder +
                             "' holds no 0.safetensors (expected SAELens's layout: 0.safetensors, "
                             "1.safetensors, ... with key \"activations\")");
  }
  // Every header is checked now (cheap) so a bad file fails at start-up, not hours into a run.
  for (const auto& file : files_) {
    const auto infos = Safetensors::readHeader(file);
    const auto it = std::find_if(infos.begin(), infos.end(),
                                 [](const Safetensors::TensorInfo& i) { return i.name == kKey; });
    if (it == infos.end()) {
      throw std::runtime_error("cached activations file '" + file +
                               "' has no \"activations\" tensor");
    }
    const auto& shape = it->shape;
    const bool ok2d = shape.size() == 2 && shape[1] == dIn && layerIndex == 0;
    const bool ok3d = shape.size() == 3 && shape[2] == dIn && layerIndex < shape[1];
    if (!ok2d && !ok3d) {
      std::string expected = "[n, " + std::to_string(dIn) + "]";
      if (layerIndex > 0)
        expected = "[n, n_layers > " + std::to_string(layerIndex) + ", ";
      else
        expected += " or [n, n_layers, ";
      expected += std::to_string(dIn) + "]";
      throw std::runtime_error("cached activations file '" + file +
                               "': \"activations\" has shape " + shapeString(shape) +
                               ", expected " + expected + " (d_in " + std::to_string(dIn) +
                               ", layer index " + std::to_string(layerIndex) + ")");
    }
    fileRows_.push_back(shape[0]);
    totalRows_ += shape[0];
  }
  if (shard.count < 1 || shard.index < 0 || shard.index >= shard.count)
    throw std::runtime_error("cached activations: " + shard.describe() + " is not a shard");
  shardStart_ = totalRows_ * shard.index / shard.count;
  shardRows_ = totalRows_ * (shard.index + 1) / shard.count - shardStart_;
  int64_t skip = shardStart_;
  while (fileIndex_ < files_.size() && skip >= fileRows_[fileIndex_])
    skip -= fileRows_[fileIndex_++];
  skipInFile_ = skip;
}

torch::Tensor CachedActivationSource::loadFile(size_t index) const {
  const std::string& file = files_[index];
  torch::Tensor t = Safetensors::readTensor(file, kKey);
  // The header was checked at construction; a file rewritten since then must not slip through.
  const bool same = t.size(0) == fileRows_[index] && t.size(-1) == dIn_ &&
                    (t.dim() == 2 || (t.dim() == 3 && layerIndex_ < t.size(1)));
  if (!same) {
    throw std::runtime_error("cached activations file '" + file +
                             "' changed since the run started");
  }
  if (t.dim() == 3) t = t.select(1, layerIndex_);
  return t.to(torch::kFloat32).contiguous();
}

torch::Tensor CachedActivationSource::next(int64_t rows) {
  if (rows < 0) throw std::runtime_error("cached activations: negative row count requested");
  if (!shard_.isWhole() && rowsServed_ + rows > shardRows_) {
    throw std::runtime_error(
        "cached activations in " + folder_ + ": the share of data-parallel " + shard_.describe() +
        " (rows " + std::to_string(shardStart_) + " to " +
        std::to_string(shardStart_ + shardRows_ - 1) + " of " + std::to_string(totalRows_) +
        ") ran out after " + std::to_string(rowsServed_) + " rows; " +
        (trainingTokens_ > 0 ? "the config asks for " + std::to_string(trainingTokens_) +
                                   " training tokens from all ranks together (and each store "
                                   "reads ahead by a buffer)"
                             : "a read of " + std::to_string(rows) + " more rows was requested") +
        " — cache more activations or lower training_tokens");
  }
  torch::Tensor out = torch::empty({rows, dIn_}, torch::kFloat32);
  int64_t filled = 0;
  while (filled < rows) {
    if (fileIndex_ >= files_.size()) {
      std::string asks = trainingTokens_ > 0
                             ? "the config asks for " + std::to_string(trainingTokens_) +
                                   " training tokens (and the store reads ahead by a buffer)"
                             : "a read of " + std::to_string(rows) + " more rows was requested";
      throw std::runtime_error("cached activations in " + folder_ + " ran out after " +
                               std::to_string(rowsServed_ + filled) + " rows; " + asks +
                               " — cache more activations or lower training_tokens");
    }
    if (!current_.defined()) {
      current_ = loadFile(fileIndex_);
      rowInFile_ = std::exchange(skipInFile_, 0);  // a shard may start inside its first file
    }
    const int64_t take = std::min(rows - filled, current_.size(0) - rowInFile_);
    out.narrow(0, filled, take).copy_(current_.narrow(0, rowInFile_, take));
    filled += take;
    rowInFile_ += take;
    if (rowInFile_ >= current_.size(0)) {
      current_ = torch::Tensor();  // free the file's memory before loading the next one
      ++fileIndex_;
      rowInFile_ = 0;
    }
  }
  rowsServed_ += rows;
  return out;
}

std::string CachedActivationSource::describe() const {
  return "cached activations in " + folder_ + " (" + std::to_string(files_.size()) +
         (files_.size() == 1 ? " file, " : " files, ") + compactCount(totalRows_) + " rows" +
         (shard_.isWhole()
              ? std::string()
              : "; " + shard_.describe() + " reads rows " + std::to_string(shardStart_) + " to " +
                    std::to_string(shardStart_ + shardRows_ - 1)) +
         ")";
}

}  // namespace sae

namespace sae {

StreamState CachedActivationSource::saveState() const {
  StreamState state;
  state["position"] = torch::tensor({rowsServed_, static_cast<int64_t>(fileIndex_),
                                     current_.defined() ? rowInFile_ : skipInFile_},
                                    torch::kInt64);
  return state;
}

void CachedActivationSource::restoreState(const StreamState& state) {
  const auto it = state.find("position");
  if (it == state.end() || it->second.numel() != 3)
    throw std::runtime_error("resume state of cached activations in " + folder_ +
                             " needs position [rows served, file index, row in file]");
  const torch::Tensor p = it->second.to(torch::kInt64).contiguous();
  const int64_t served = p[0].item<int64_t>(), file = p[1].item<int64_t>(),
                row = p[2].item<int64_t>();
  if (file < 0 || file > static_cast<int64_t>(files_.size()) || row < 0 ||
      (file < static_cast<int64_t>(files_.size()) && row >= fileRows_[size_t(file)]))
    throw std::runtime_error("resume state: position file " + std::to_string(file) + " row " +
                             std::to_string(row) + " is outside the cached activations in " +
                             folder_ + " (" + std::to_string(files_.size()) +
                             " files); were they changed since the checkpoint?");
  rowsServed_ = served;
  fileIndex_ = static_cast<size_t>(file);
  current_ = torch::Tensor();
  rowInFile_ = 0;
  skipInFile_ = 0;
  if (row > 0) {
    current_ = loadFile(fileIndex_);
    rowInFile_ = row;
  }
}

}  // namespace sae
