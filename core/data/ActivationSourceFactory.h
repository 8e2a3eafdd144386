#pragma once
#include <memory>

#include "config/RunConfig.h"
#include "data/ActivationSource.h"

namespace sae {

// Picks the activation source a validated config asks for: synthetic ground truth, cached
// activation files, or (issue 3) a language model. Errors name the field to change.
class ActivationSourceFactory {
 public:
  static std::shared_ptr<ActivationSource> create(const RunConfig& config);
};

}  // namespace sae
