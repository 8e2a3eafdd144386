#include "runs/RunFolderWriter.h"

#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <system_error>

#include <nlohmann/json.hpp>

#include "config/AtomicFile.h"
#include "runs/MetricsJsonlSink.h"
#include "runs/RunManifest.h"
#include "runs/TensorBoardEventSink.h"

namespace fs = std::filesystem;

namespace sae {

void RunFolderWriter::truncateMetricsBefore(const std::string& path, int64_t step) {
  std::ifstream in(path);
  if (!in) return;
  std::ostringstream kept;
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    const auto record = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    // A line cut short by the kill is not valid JSON: drop it with the later ones.
    if (!record.is_object() || !record.contains("step") || !record["step"].is_number_integer())
      break;
    if (record["step"].get<int64_t>() >= step) break;
    kept << line << '\n';
  }
  in.close();
  AtomicFile::write(path, kept.str());
}

void RunFolderWriter::createFolder(const std::string& dir) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) {
    throw std::runtime_error("cannot create the run folder '" + dir + "': " + ec.message() +
                             "; choose another output folder (--out, or the runs folder in the "
                             "workbench) or make this one writable");
  }
}

RunFolderWriter::RunFolderWriter(const RunConfig& config, const std::string& runDir,
                                 const Options& options)
    : runDir_(runDir) {
  createFolder(runDir);
  const std::string metricsPath = (fs::path(runDir) / "metrics.jsonl").string();
  if (options.resume) {
    truncateMetricsBefore(metricsPath, options.resumedFromStep);
  } else {
    config.saveFile((fs::path(runDir) / "config.json").string());
  }
  metrics_ = std::make_unique<MetricsJsonlSink>(metricsPath, /*append=*/options.resume);
  // events.out.tfevents.<time>.<host> next to metrics.jsonl: the same scalars, plus the
  // decoder-norm and feature-density histograms, for `tensorboard --logdir`.
  events_ = std::make_unique<TensorBoardEventSink>(runDir);
  // Last: run.json says "running" only for a run that really starts.
  RunManifest::Options manifestOptions;
  manifestOptions.resume = options.resume;
  manifest_ = std::make_unique<RunManifest>(runDir, config.totalTrainingTokens(),
                                            config.totalSteps(), manifestOptions);
}

RunFolderWriter::~RunFolderWriter() = default;

std::vector<TrainingObserver*> RunFolderWriter::observers() const {
  return {metrics_.get(), events_.get(), manifest_.get()};
}

void RunFolderWriter::ended(bool finished, const std::string& message) {
  events_->flush();
  if (!finished) manifest_->markStopped(message);
}

void RunFolderWriter::markFailed(const std::string& message) noexcept {
  try {
    manifest_->markFailed(message);
  } catch (const std::exception&) {
    // run.json cannot be written either (disk full?): the training error is the one to report.
  }
}

}  // namespace sae
