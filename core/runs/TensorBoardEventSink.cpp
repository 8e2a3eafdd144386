#include "runs/TensorBoardEventSink.h"

#include <unistd.h>

#include <algorithm>
#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <limits>

#include "runs/ProtobufWriter.h"

namespace fs = std::filesystem;

namespace sae {

namespace {

// Field numbers from tensorboard/compat/proto/{event,summary,histogram}.proto.
constexpr int kEventWallTime = 1;
constexpr int kEventStep = 2;
constexpr int kEventFileVersion = 3;
constexpr int kEventSummary = 5;
constexpr int kSummaryValue = 1;
constexpr int kValueTag = 1;
constexpr int kValueSimpleValue = 2;
constexpr int kValueHisto = 5;
constexpr int kHistoMin = 1;
constexpr int kHistoMax = 2;
constexpr int kHistoNum = 3;
constexpr int kHistoSum = 4;
constexpr int kHistoSumSquares = 5;
constexpr int kHistoBucketLimit = 6;
constexpr int kHistoBucket = 7;

// proto3 leaves a singular scalar field out when it holds its default (all bits zero); doing
// the same makes the bytes those of any protobuf library. Fields inside a oneof (file_version,
// summary, simple_value, histo) are always written.
bool isDefault(double value) {
  return value == 0 && !std::signbit(value);
}

ProtobufWriter eventHeader(double wallTime, int64_t step) {
  ProtobufWriter event;
  if (!isDefault(wallTime)) event.addDouble(kEventWallTime, wallTime);
  if (step != 0) event.addInt64(kEventStep, step);
  return event;
}

double systemUnixSeconds() {
  using namespace std::chrono;
  return duration<double>(system_clock::now().time_since_epoch()).count();
}

std::string hostName() {
  char name[256] = {};
  if (gethostname(name, sizeof name - 1) != 0 || name[0] == '\0') return "localhost";
  return name;
}

// i * step + start as numpy.linspace computes it, kept as two roundings (no fused multiply-add)
// so the bucket limits equal numpy's bit for bit.
double linspacePoint(int i, double step, double start) {
  volatile double product = static_cast<double>(i) * step;
  return product + start;
}

}  // namespace

TensorBoardEventSink::TensorBoardEventSink(const std::string& runDir, Options options)
    : options_(std::move(options)),
      writer_([&] {
        if (!options_.clock) options_.clock = systemUnixSeconds;
        if (options_.hostname.empty()) options_.hostname = hostName();
        startTime_ = options_.clock();
        const std::string base =
            (fs::path(runDir) / fileName(startTime_, options_.hostname)).string();
        std::string path = base;
        for (int n = 1; fs::exists(path); ++n)
          path = base + "." + std::to_string(n);
        return path;
      }()),
      lastFlush_(std::chrono::steady_clock::now()) {
  writer_.write(fileVersionEvent(startTime_));
  writer_.flush();
}

TensorBoardEventSink::~TensorBoardEventSink() {
  try {
    flush();
  } catch (...) {
    // A destructor must not throw; the write error was already reported by append() if it
    // happened during the run.
  }
}

double TensorBoardEventSink::now() const {
  return options_.clock();
}

std::string TensorBoardEventSink::fileName(double unixSeconds, const std::string& hostname) {
  char seconds[32];
  std::snprintf(seconds, sizeof seconds, "%010" PRId64,
                static_cast<int64_t>(std::floor(unixSeconds)));
  return std::string("events.out.tfevents.") + seconds + "." + hostname;
}

std::string TensorBoardEventSink::fileVersionEvent(double wallTime) {
  ProtobufWriter event = eventHeader(wallTime, 0);
  event.addBytes(kEventFileVersion, "brain.Event:2");
  return event.bytes();
}

std::string TensorBoardEventSink::scalarsEvent(double wallTime, int64_t step,
                                               const std::map<std::string, double>& values) {
  ProtobufWriter summary;
  for (const auto& [tag, value] : values) {
    ProtobufWriter entry;
    entry.addBytes(kValueTag, tag);
    // simple_value is a float: TensorBoard shows scalars in single precision anyway.
    entry.addFloat(kValueSimpleValue, static_cast<float>(value));
    summary.addMessage(kSummaryValue, entry);
  }
  ProtobufWriter event = eventHeader(wallTime, step);
  event.addMessage(kEventSummary, summary);
  return event.bytes();
}

std::string TensorBoardEventSink::histogramEvent(double wallTime, int64_t step,
                                                 const std::string& tag,
                                                 const TensorBoardHistogram& histogram) {
  ProtobufWriter histo;
  const std::pair<int, double> scalars[] = {{kHistoMin, histogram.min},
                                            {kHistoMax, histogram.max},
                                            {kHistoNum, histogram.num},
                                            {kHistoSum, histogram.sum},
                                            {kHistoSumSquares, histogram.sum_squares}};
  for (const auto& [field, value] : scalars) {
    if (!isDefault(value)) histo.addDouble(field, value);
  }
  if (!histogram.bucket_limit.empty())
    histo.addPackedDoubles(kHistoBucketLimit, histogram.bucket_limit);
  if (!histogram.bucket.empty()) histo.addPackedDoubles(kHistoBucket, histogram.bucket);

  ProtobufWriter entry;
  entry.addBytes(kValueTag, tag);
  entry.addMessage(kValueHisto, histo);
  ProtobufWriter summary;
  summary.addMessage(kSummaryValue, entry);
  ProtobufWriter event = eventHeader(wallTime, step);
  event.addMessage(kEventSummary, summary);
  return event.bytes();
}

bool TensorBoardEventSink::makeHistogram(const std::vector<double>& values, int bins,
                                         TensorBoardHistogram& out) {
  std::vector<double> finite;
  finite.reserve(values.size());
  for (double v : values) {
    if (std::isfinite(v)) finite.push_back(v);
  }
  if (finite.empty() || bins < 1) return false;

  out = TensorBoardHistogram{};
  out.min = finite.front();
  out.max = finite.front();
  for (double v : finite) {
    out.min = std::min(out.min, v);
    out.max = std::max(out.max, v);
    out.sum += v;
    out.sum_squares += v * v;
  }
  out.num = static_cast<double>(finite.size());

  // numpy.histogram with equal-width bins: a single value gets the range (v - 0.5, v + 0.5).
  double first = out.min;
  double last = out.max;
  if (first == last) {
    first -= 0.5;
    last += 0.5;
  }
  std::vector<double> edges(static_cast<size_t>(bins) + 1);
  const double step = (last - first) / bins;
  for (int i = 0; i < bins; ++i)
    edges[static_cast<size_t>(i)] = linspacePoint(i, step, first);
  edges[static_cast<size_t>(bins)] = last;

  std::vector<double> counts(static_cast<size_t>(bins), 0.0);
  for (double v : finite) {
    // The estimate can be one bin off near an edge; the comparisons with the edges decide, as
    // in numpy. The last bin includes its right edge, the others do not.
    int index = static_cast<int>((v - first) / (last - first) * bins);
    index = std::min(std::max(index, 0), bins - 1);
    if (v < edges[static_cast<size_t>(index)] && index > 0) --index;
    if (index != bins - 1 && v >= edges[static_cast<size_t>(index) + 1]) ++index;
    counts[static_cast<size_t>(index)] += 1;
  }

  // torch.utils.tensorboard's layout: empty bins at both ends are dropped (only possible when
  // all values are equal), and since TensorBoard stores only right limits, the bucket in front
  // of the first non-empty bin stays, empty, to carry that bin's left edge.
  size_t firstUsed = 0;
  while (counts[firstUsed] == 0)
    ++firstUsed;
  size_t lastUsed = counts.size() - 1;
  while (counts[lastUsed] == 0)
    --lastUsed;
  out.bucket.assign(1, 0.0);
  if (firstUsed > 0) out.bucket[0] = counts[firstUsed - 1];
  out.bucket.insert(out.bucket.end(), counts.begin() + static_cast<std::ptrdiff_t>(firstUsed),
                    counts.begin() + static_cast<std::ptrdiff_t>(lastUsed) + 1);
  out.bucket_limit.assign(edges.begin() + static_cast<std::ptrdiff_t>(firstUsed),
                          edges.begin() + static_cast<std::ptrdiff_t>(lastUsed) + 2);
  return true;
}

void TensorBoardEventSink::append(const std::string& event) {
  std::lock_guard<std::mutex> lock(mutex_);
  writer_.write(event);
  const auto now = std::chrono::steady_clock::now();
  if (std::chrono::duration<double>(now - lastFlush_).count() >= options_.flushSeconds) {
    writer_.flush();
    lastFlush_ = now;
  }
}

void TensorBoardEventSink::onMetrics(const MetricsEvent& event) {
  if (event.values.empty()) return;
  append(scalarsEvent(now(), event.step, event.values));
}

void TensorBoardEventSink::onHistogram(const HistogramEvent& event) {
  TensorBoardHistogram histogram;
  // All values NaN/Inf (a diverged run): nothing TensorBoard could draw; the scalars show it.
  if (!makeHistogram(event.values, options_.histogramBins, histogram)) return;
  append(histogramEvent(now(), event.step, event.name, histogram));
}

void TensorBoardEventSink::onCheckpoint(const std::string& /*folder*/) {
  flush();
}

void TensorBoardEventSink::onFinished(const std::string& /*finalFolder*/) {
  flush();
}

void TensorBoardEventSink::flush() {
  std::lock_guard<std::mutex> lock(mutex_);
  writer_.flush();
  lastFlush_ = std::chrono::steady_clock::now();
}

}  // namespace sae
