#pragma once
// Where the activation store gets its rows from: a language model (issue 3), files of cached
// activations, or the synthetic ground-truth generator.
#include <map>
#include <string>

#include <torch/torch.h>

namespace sae {

// Named tensors that hold everything a stream's future depends on (part of a checkpoint's
// resume state; the names are the owner's own, the checkpoint prefixes them).
using StreamState = std::map<std::string, torch::Tensor>;

class ActivationSource {
 public:
  virtual ~ActivationSource() = default;
  virtual int64_t dIn() const = 0;
  // The next `rows` activation rows of the stream, [rows, d_in] float32 on the CPU. Throws
  // std::runtime_error with a clear message when the source runs out or a file is bad.
  virtual torch::Tensor next(int64_t rows) = 0;
  // SAELens shuffles and normalises buffers that come from a live model but not buffers read
  // from cached activation files; sources say which semantics they follow.
  virtual bool shufflesBuffers() const = 0;
  // One line for logs, e.g. "cached activations in /data/acts (12 files, 1.2M rows)".
  virtual std::string describe() const = 0;
  // Everything the rest of the stream depends on, so that a run resumed from a checkpoint reads
  // exactly the rows an uninterrupted run would have read.
  virtual StreamState saveState() const = 0;
  // Called on a freshly built source with the same settings, before any next(). Throws
  // std::runtime_error naming what does not fit when `state` is not this source's.
  virtual void restoreState(const StreamState& state) = 0;
};

}  // namespace sae
