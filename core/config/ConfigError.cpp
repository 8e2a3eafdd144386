#include "config/ConfigError.h"

namespace sae {

namespace {
std::string joinIssues(const std::string& source, const std::vector<ConfigError::Issue>& issues) {
  std::string text = source + ": " + std::to_string(issues.size()) +
                     (issues.size() == 1 ? " problem" : " problems");
  for (const auto& issue : issues)
    text += "\n  " + issue.message;
  return text;
}
}  // namespace

ConfigError::ConfigError(const std::string& message) : std::runtime_error(message) {}

ConfigError::ConfigError(const std::string& source, std::vector<Issue> issues)
    : std::runtime_error(joinIssues(source, issues)), issues_(std::move(issues)) {}

}  // namespace sae
