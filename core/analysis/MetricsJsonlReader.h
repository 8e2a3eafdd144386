#pragma once
// Reads a run folder's metrics.jsonl (written by runs/MetricsJsonlSink: one JSON object per
// logged step, {"step": s, "<metric>": value or null, ...}) back into MetricsEvents, e.g. to
// overlay an earlier run on the live plots. Torch-free and Qt-free.
#include <string>
#include <vector>

#include "train/TrainingEvents.h"

namespace sae {

class MetricsJsonlReader {
 public:
  // One event per non-empty line. n_training_tokens comes from "n_training_tokens" or else
  // "details/n_training_tokens" (0 when neither is there); wall_seconds from "wall_seconds"
  // (NaN when absent: older files do not record it). Those keys and "step" are not copied
  // into values; null (a non-finite value when logged) becomes NaN.
  // Throws std::runtime_error naming the file and line for a missing file, broken JSON, a line
  // that is not an object, a missing or non-integer "step", or a value that is not a number.
  // A last line without its newline that does not parse is skipped: the run may still be
  // writing it.
  static std::vector<MetricsEvent> read(const std::string& path);
};

}  // namespace sae
