// Reading the JSON fixtures under tests/fixtures/ written by tests/reference/*.py, and turning
// their values into tensors and SaeOptions.
#pragma once

#include <cstddef>
#include <cstdint>
#include <fstream>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include <torch/torch.h>
#include <nlohmann/json.hpp>

#include "sae/Sae.h"
#include "support/FixtureFiles.h"

namespace saetest {

// {"shape": [...], "data": [...]} -> tensor of `dtype` (the doubles are exact float32 values).
inline torch::Tensor tensorFromJson(const nlohmann::json& j, torch::Dtype dtype = torch::kFloat32) {
  const auto data = j["data"].get<std::vector<double>>();
  const auto shape = j["shape"].get<std::vector<int64_t>>();
  return torch::tensor(data, torch::kFloat64).to(dtype).reshape(shape);
}

// {"W_enc": ..., "b_enc": ..., "W_dec": ..., "b_dec": ...} -> (name, tensor) in that order.
inline std::vector<std::pair<std::string, torch::Tensor>> paramsFromJson(const nlohmann::json& p) {
  std::vector<std::pair<std::string, torch::Tensor>> out;
  for (const char* name : {"W_enc", "b_enc", "W_dec", "b_dec"}) {
    out.emplace_back(name, tensorFromJson(p[name]));
  }
  return out;
}

// [true, false, ...] -> bool tensor.
inline torch::Tensor maskFromJson(const nlohmann::json& m) {
  const auto values = m.get<std::vector<bool>>();
  auto mask = torch::zeros({static_cast<int64_t>(values.size())}, torch::kBool);
  for (size_t i = 0; i < values.size(); ++i)
    mask[static_cast<int64_t>(i)] = bool(values[i]);
  return mask;
}

// The d_in = 16, d_sae = 64 Sae of the forward and step fixtures, with the options every such
// fixture case may set; suites whose fixtures set more options add them.
inline sae::SaeOptions smallSaeOptionsFromJson(const nlohmann::json& o) {
  sae::SaeOptions options;
  options.d_in = 16;
  options.d_sae = 64;
  options.normalize_sae_decoder = o.value("normalize_sae_decoder", true);
  options.apply_b_dec_to_input = o.value("apply_b_dec_to_input", true);
  options.scale_sparsity_penalty_by_decoder_norm =
      o.value("scale_sparsity_penalty_by_decoder_norm", false);
  options.use_ghost_grads = o.value("use_ghost_grads", false);
  return options;
}

}  // namespace saetest
