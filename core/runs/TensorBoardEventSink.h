#pragma once
// Writes a run's metrics and histograms as a TensorBoard event file in the run folder, so
// `tensorboard --logdir RUNS` shows them offline: every scalar of a MetricsEvent under its
// SAELens name (the tags metrics.jsonl uses) and every HistogramEvent as a TensorBoard histogram.
// The Event/Summary/HistogramProto messages are encoded by hand (formats.md, section 6).
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "runs/TfRecordWriter.h"
#include "train/TrainingObserver.h"

namespace sae {

// HistogramProto's fields. bucket[i] counts the values in (bucket_limit[i-1], bucket_limit[i]].
struct TensorBoardHistogram {
  double min = 0;
  double max = 0;
  double num = 0;
  double sum = 0;
  double sum_squares = 0;
  std::vector<double> bucket_limit;
  std::vector<double> bucket;
};

struct TensorBoardEventSinkOptions {
  // Unix seconds stamped on each event (and used for the file name); empty: the system clock.
  // Tests inject fixed times to compare files byte for byte.
  std::function<double()> clock;
  std::string hostname;  // for the file name; empty: gethostname()
  // The first event at least this long after the last flush flushes (with the ones before it).
  double flushSeconds = 5;
  int histogramBins = 30;  // equal-width buckets between the smallest and largest value
};

class TensorBoardEventSink : public TrainingObserver {
 public:
  using Options = TensorBoardEventSinkOptions;

  // Creates runDir/events.out.tfevents.<unix seconds, 10 digits>.<hostname> (with ".1", ".2"...
  // appended if a resumed run would reuse a name) and writes the file_version event. Throws
  // std::runtime_error naming the path when the file cannot be created.
  explicit TensorBoardEventSink(const std::string& runDir, Options options = {});
  ~TensorBoardEventSink() override;  // flushes; never throws

  void onMetrics(const MetricsEvent& event) override;
  void onHistogram(const HistogramEvent& event) override;
  // Checkpoints and the end of the run flush, so the file matches what was saved.
  void onCheckpoint(const std::string& folder) override;
  void onFinished(const std::string& finalFolder) override;

  void flush();
  const std::string& path() const { return writer_.path(); }

  // The record payloads (serialized Event messages), public so tests can check them one by one.
  static std::string fileVersionEvent(double wallTime);
  // One Event whose Summary holds one Value{tag, simple_value} per entry, in map order.
  static std::string scalarsEvent(double wallTime, int64_t step,
                                  const std::map<std::string, double>& values);
  static std::string histogramEvent(double wallTime, int64_t step, const std::string& tag,
                                    const TensorBoardHistogram& histogram);
  // Bins the finite values as numpy.histogram(values, bins) does and lays the buckets out as
  // torch.utils.tensorboard does: an empty bucket whose limit is the left edge, then one bucket
  // per bin from the first to the last non-empty one, limited by its right edge. Sums run left
  // to right. False when no value is finite.
  static bool makeHistogram(const std::vector<double>& values, int bins, TensorBoardHistogram& out);
  static std::string fileName(double unixSeconds, const std::string& hostname);

 private:
  double now() const;
  // Appends one record and flushes when flushSeconds have passed since the last flush.
  void append(const std::string& event);

  Options options_;
  double startTime_ = 0;  // the clock's first reading: file name and file_version event
  TfRecordWriter writer_;
  std::mutex mutex_;
  std::chrono::steady_clock::time_point lastFlush_;
};

}  // namespace sae
