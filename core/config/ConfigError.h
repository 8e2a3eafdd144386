#pragma once
#include <stdexcept>
#include <string>
#include <vector>

namespace sae {

// A bad configuration or input file. what() is the full, user-facing message (one problem per
// line); issues() keeps the field-by-field breakdown for the GUI form.
class ConfigError : public std::runtime_error {
 public:
  struct Issue {
    std::string field;
    std::string message;
  };
  explicit ConfigError(const std::string& message);
  ConfigError(const std::string& source, std::vector<Issue> issues);
  const std::vector<Issue>& issues() const { return issues_; }

 private:
  std::vector<Issue> issues_;
};

}  // namespace sae
