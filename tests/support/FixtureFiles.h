// Reading the JSON fixtures under tests/fixtures/ written by tests/reference/*.py. Torch-free,
// so suites that test plain readers need no LibTorch.
#pragma once

#include <fstream>
#include <stdexcept>
#include <string>

#include <nlohmann/json.hpp>

namespace saetest {

// tests/fixtures/<relativePath>, e.g. "sae/init.json"; throws when the file is missing.
inline nlohmann::json loadFixture(const std::string& relativePath) {
  const std::string path = std::string(SAEWB_FIXTURES_DIR) + "/" + relativePath;
  std::ifstream in(path);
  if (!in) throw std::runtime_error("missing fixture " + path);
  return nlohmann::json::parse(in);
}

}  // namespace saetest
