// libFuzzer target: PthReader::read (torch.save zip archives: ZipArchive + the pickle subset
// state dicts use). A thrown std::exception with a message is the correct answer to bad input; a
// crash, abort, hang or sanitizer report is a bug.

#include <cstddef>
#include <cstdint>
#include <exception>
#include <string>

#include "FuzzInputFile.h"
#include "formats/PthReader.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static sae::fuzz::FuzzInputFile file("model_final.pth");
  const std::string& path = file.write(data, size);
  try {
    const auto tensors = sae::PthReader::read(path);
    for (const auto& [name, tensor] : tensors) {
      if (tensor.numel() > 0) (void)tensor.to(torch::kFloat64).sum().item<double>();
    }
  } catch (const std::exception&) {
  }
  return 0;
}
