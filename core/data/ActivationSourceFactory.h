#pragma once
#include <functional>
#include <memory>
#include <string>

#include "config/RunConfig.h"
#include "data/ActivationSource.h"

namespace sae {

// Picks the activation source a validated config asks for: synthetic ground truth, cached
// activation files, or a language model run up to the hook on a token dataset. Errors name the
// field to change.
class ActivationSourceFactory {
 public:
  // `log` receives progress lines of slow setup (building the demo world on first use).
  static std::shared_ptr<ActivationSource> create(
      const RunConfig& config, const std::function<void(const std::string&)>& log = {});
};

}  // namespace sae
