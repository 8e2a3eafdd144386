#pragma once
// Plain value types the trainer emits. No tensors: these cross threads to the GUI.
#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace sae {

// One logged step: SAELens metric names -> values, e.g. "losses/mse_loss".
struct MetricsEvent {
  int64_t step = 0;  // 0-based, as SAELens's wandb step
  int64_t n_training_tokens = 0;
  double wall_seconds = 0;  // since the run started
  std::map<std::string, double> values;
};

// A histogram sample (decoder norms, log10 feature density, activation norms).
struct HistogramEvent {
  int64_t step = 0;
  std::string name;            // e.g. "plots/feature_density_line_chart", "weights/W_dec_norms"
  std::vector<double> values;  // raw values; the receiver bins them
  // Reference lines to draw on the histogram, e.g. {"sqrt(d_in)", 22.6}.
  std::map<std::string, double> markers;
  std::string title;  // optional; e.g. the notebook's "Buffer Norm Mean over 10 batches, mean: ..."
};

struct ProgressEvent {
  int64_t step = 0;
  int64_t total_steps = 0;
  int64_t tokens_done = 0;
  int64_t tokens_total = 0;
  double elapsed_seconds = 0;
  double tokens_per_second = 0;
  double mse_loss = 0;  // last step's values, for the progress line
  double l1_loss = 0;   // coefficient-scaled, as SAELens's progress bar shows
};

}  // namespace sae
