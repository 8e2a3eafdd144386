#include "data/TokenSourceFactory.h"

#include <algorithm>
#include <filesystem>
#include <map>
#include <stdexcept>
#include <system_error>

#include "data/HubCache.h"
#include "data/MultiFileDocumentReader.h"
#include "data/PackedTokenSource.h"
#include "formats/BinTokenReader.h"
#include "formats/JsonlTokenReader.h"
#include "formats/NpyReader.h"
#include "formats/ParquetReader.h"

namespace sae {

namespace fs = std::filesystem;

namespace {

const char* const kKinds[] = {".parquet", ".npy", ".bin", ".jsonl"};

std::string kindOf(const fs::path& path) {
  const std::string ext = path.extension().string();
  for (const char* k : kKinds)
    if (ext == k) return k;
  return {};
}

bool isTrainFile(const fs::path& relative) {
  for (const auto& part : relative.parent_path())
    if (part == "train") return true;
  return relative.filename().string().rfind("train", 0) == 0;
}

// A hub name looks like "Org/Name": one slash, not absolute, no dot segments.
bool looksLikeHubName(const std::string& s) {
  return !s.empty() && s.front() != '/' && s.front() != '.' &&
         std::count(s.begin(), s.end(), '/') == 1 && s.back() != '/';
}

std::vector<std::string> filesInFolder(const fs::path& folder, const std::string& shownAs) {
  std::map<std::string, std::vector<fs::path>> byKind;
  std::error_code ec;
  fs::recursive_directory_iterator it(folder, fs::directory_options::follow_directory_symlink, ec);
  if (ec) throw std::runtime_error(shownAs + ": cannot list folder (" + ec.message() + ")");
  for (fs::recursive_directory_iterator end; it != end; it.increment(ec)) {
    if (ec) throw std::runtime_error(shownAs + ": cannot list folder (" + ec.message() + ")");
    const auto name = it->path().filename().string();
    if (!name.empty() && name[0] == '.') {
      if (it->is_directory(ec)) it.disable_recursion_pending();
      continue;  // .cache, .git, hidden files
    }
    if (it->is_regular_file(ec) && !kindOf(it->path()).empty())
      byKind[kindOf(it->path())].push_back(fs::relative(it->path(), folder, ec));
  }
  if (byKind.empty())
    throw std::runtime_error(shownAs + ": the folder " + folder.string() +
                             " holds no token files (.parquet, .npy, .bin or .jsonl)");
  if (byKind.size() > 1) {
    std::string kinds;
    for (const auto& [k, files] : byKind)
      kinds += (kinds.empty() ? "" : ", ") + std::to_string(files.size()) + " " + k;
    throw std::runtime_error(shownAs + ": the folder " + folder.string() +
                             " mixes kinds of token files (" + kinds +
                             "); point dataset_path at one file or a folder of one kind");
  }
  auto files = byKind.begin()->second;
  std::vector<fs::path> train;
  for (const auto& f : files)
    if (isTrainFile(f)) train.push_back(f);
  if (!train.empty()) files = train;
  std::sort(files.begin(), files.end(), [](const fs::path& a, const fs::path& b) {
    return a.generic_string() < b.generic_string();
  });
  std::vector<std::string> out;
  for (const auto& f : files)
    out.push_back((folder / f).string());
  return out;
}

}  // namespace

std::vector<std::string> TokenSourceFactory::resolveFiles(const std::string& datasetPath) {
  const std::string shownAs = "dataset_path \"" + datasetPath + "\"";
  if (datasetPath.empty()) throw std::runtime_error("dataset_path is empty");
  std::error_code ec;
  if (fs::is_regular_file(datasetPath, ec)) {
    if (kindOf(datasetPath).empty())
      throw std::runtime_error(shownAs + ": unknown token file type \"" +
                               fs::path(datasetPath).extension().string() +
                               "\" (expected .parquet, .npy, .bin or .jsonl)");
    return {datasetPath};
  }
  if (fs::is_directory(datasetPath, ec)) return filesInFolder(datasetPath, shownAs);
  if (looksLikeHubName(datasetPath)) {
    if (auto snapshot = HubCache::findSnapshot(datasetPath, HubCache::Kind::Dataset))
      return filesInFolder(*snapshot, shownAs);
    throw std::runtime_error(shownAs + " is neither a file nor a folder, and the " +
                             HubCache::notFoundMessage(datasetPath, HubCache::Kind::Dataset));
  }
  throw std::runtime_error(shownAs + ": no such file or folder");
}

std::unique_ptr<TokenDocumentReader> TokenSourceFactory::openFiles(
    const std::vector<std::string>& files, const std::string& binTokenDtype,
    const std::string& what) {
  std::vector<std::unique_ptr<TokenDocumentReader>> readers;
  for (const auto& f : files) {
    const std::string kind = kindOf(f);
    if (kind == ".parquet")
      readers.push_back(std::make_unique<ParquetReader>(f));
    else if (kind == ".npy")
      readers.push_back(std::make_unique<NpyReader>(f));
    else if (kind == ".bin")
      readers.push_back(std::make_unique<BinTokenReader>(f, binTokenDtype));
    else if (kind == ".jsonl")
      readers.push_back(std::make_unique<JsonlTokenReader>(f));
    else
      throw std::runtime_error(f + ": unknown token file type");
  }
  if (readers.size() == 1) return std::move(readers.front());
  return std::make_unique<MultiFileDocumentReader>(std::move(readers), what);
}

std::shared_ptr<TokenSource> TokenSourceFactory::create(const RunConfig& config,
                                                        const TokenSourceOptions& options) {
  const auto files = resolveFiles(config.dataset_path);
  auto reader = openFiles(files, config.token_file_dtype, config.dataset_path);
  return std::make_shared<PackedTokenSource>(std::move(reader), config.context_size,
                                             config.prepend_bos, options.bosTokenId,
                                             config.dataset_path);
}

}  // namespace sae
