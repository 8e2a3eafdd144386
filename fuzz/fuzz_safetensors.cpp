// libFuzzer target: Safetensors::read (SAE weights, cached activations, model checkpoints).
// A thrown std::exception with a message is the correct answer to bad input; a crash, abort,
// hang or sanitizer report is a bug.

#include <cstddef>
#include <cstdint>
#include <exception>
#include <map>
#include <string>

#include "FuzzInputFile.h"
#include "formats/Safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static sae::fuzz::FuzzInputFile file("input.safetensors");
  const std::string& path = file.write(data, size);
  try {
    std::map<std::string, std::string> metadata;
    const auto tensors = sae::Safetensors::read(path, &metadata);
    // Touch every element: a tensor whose storage is shorter than its shape shows up here.
    for (const auto& [name, tensor] : tensors) {
      if (tensor.numel() > 0) (void)tensor.to(torch::kFloat64).sum().item<double>();
    }
    if (!tensors.empty()) (void)sae::Safetensors::readTensor(path, tensors.front().first);
  } catch (const std::exception&) {
  }
  return 0;
}
