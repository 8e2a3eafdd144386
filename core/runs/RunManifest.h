#pragma once
// run.json: what a run folder says about its run, for the GUI's run list and for people reading
// the folder later: status (running, finished, stopped, failed + message), tokens done, start and
// end times, and the versions of the app and LibTorch that wrote it. Rewritten atomically on
// every change, so a reader never sees half a file.
#include <chrono>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>

#include "train/TrainingObserver.h"

namespace sae {

// The fields of run.json.
struct RunManifestData {
  std::string status;   // "running", "finished", "stopped" or "failed"
  std::string message;  // why it stopped or failed; "" otherwise
  int64_t tokens_done = 0;
  int64_t total_tokens = 0;
  int64_t step = 0;
  int64_t total_steps = 0;
  std::string start_time;    // ISO-8601 UTC, e.g. "2024-05-01T12:34:56Z"
  std::string end_time;      // "" while running
  std::string updated_time;  // last rewrite: a "running" run that stopped updating was killed
  std::string app_version;
  std::string libtorch_version;
  std::string hostname;
  int64_t pid = 0;
};

struct RunManifestOptions {
  std::function<double()> clock;  // unix seconds; empty: the system clock
  // Progress events rewrite the file at most this often (each write fsyncs); status changes and
  // checkpoints write at once.
  double progressWriteSeconds = 10;
  // A resumed run keeps the start time of the run.json already in the folder.
  bool resume = false;
};

class RunManifest : public TrainingObserver {
 public:
  using Options = RunManifestOptions;
  static constexpr const char* kFileName = "run.json";

  // Writes runDir/run.json with status "running" and the start time. Throws std::runtime_error
  // naming the file when it cannot be written (or, with resume, read).
  RunManifest(const std::string& runDir, int64_t totalTokens, int64_t totalSteps,
              Options options = {});

  // Status changes, each written at once. From "running" any end state may follow; repeating
  // the current state only rewrites it; "failed" overrides any state (a failure after the
  // final save still leaves the folder suspect). Anything else is a programming error and
  // throws std::logic_error.
  void markFinished();
  void markStopped(const std::string& message = "");
  void markFailed(const std::string& message);

  void onProgress(const ProgressEvent& event) override;
  void onCheckpoint(const std::string& folder) override;
  void onFinished(const std::string& finalFolder) override;  // markFinished()

  RunManifestData data() const;
  const std::string& path() const { return path_; }

  // Reads a run.json; throws std::runtime_error naming the file and the bad field.
  static RunManifestData load(const std::string& path);
  // "YYYY-MM-DDTHH:MM:SSZ" (UTC) for unix seconds.
  static std::string isoTime(double unixSeconds);
  static std::string toJson(const RunManifestData& data);

 private:
  void setStatus(const std::string& status, const std::string& message);
  void writeLocked();

  std::string path_;
  Options options_;
  RunManifestData data_;
  mutable std::mutex mutex_;
  std::chrono::steady_clock::time_point lastWrite_;
};

}  // namespace sae
