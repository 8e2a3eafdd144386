// libFuzzer target: RunConfig::loadFile, the reader of config JSON files (--config, presets,
// run folders' config.json). A ConfigError or any other std::exception with a message is the
// correct answer to bad input; a crash, abort, hang or sanitizer report is a bug.

#include <cstddef>
#include <cstdint>
#include <exception>

#include "FuzzInputFile.h"
#include "config/RunConfig.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static sae::fuzz::FuzzInputFile file("config.json");
  const std::string& path = file.write(data, size);
  try {
    const sae::RunConfig config = sae::RunConfig::loadFile(path);
    // A config that loads is used: every derived value and the round trip must be safe too.
    (void)config.toJson().dump();
    (void)config.preambleLines();
    (void)config.effectiveRunName();
    (void)config.resolvedCachedActivationsPath();
    (void)config.totalSteps();
    (void)config.effectiveLrEnd();
    (void)config.effectiveEvalBatchSizePrompts();
    const sae::RunConfig again = sae::RunConfig::fromJson(config.toJson(), "round trip");
    (void)again;
  } catch (const std::exception&) {
  }
  return 0;
}
