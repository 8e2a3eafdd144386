#pragma once
// The safetensors format (u64 header length, JSON header, little-endian row-major data),
// read and written natively: Debian has no safetensors library.
#include <map>
#include <string>
#include <utility>
#include <vector>

#include <torch/torch.h>

namespace sae {

class Safetensors {
 public:
  using NamedTensors = std::vector<std::pair<std::string, torch::Tensor>>;

  // One header entry, validated against the file (offsets relative to the data buffer).
  struct TensorInfo {
    std::string name;
    std::string dtype;  // "F32", "BF16", ...
    torch::ScalarType scalarType;
    std::vector<int64_t> shape;
    uint64_t begin = 0, end = 0;
  };

  // Parses and fully validates the header without reading tensor data (cheap on large files):
  // entries in header order. Throws like read().
  static std::vector<TensorInfo> readHeader(const std::string& path,
                                            std::map<std::string, std::string>* metadata = nullptr);

  // Reads every tensor (F64 F32 F16 BF16 I64 I32 I16 I8 U8 BOOL) in header order. A short,
  // corrupt or inconsistent file throws std::runtime_error naming the file and the problem
  // (bad header length, bad JSON, unknown dtype, offsets outside the buffer, gaps/overlaps,
  // trailing bytes, shape/size mismatch).
  static NamedTensors read(const std::string& path,
                           std::map<std::string, std::string>* metadata = nullptr);
  // One tensor by key; throws naming the file and the keys present if it is missing.
  static torch::Tensor readTensor(const std::string& path, const std::string& key);
  // Writes contiguous CPU copies, header padded with spaces to a multiple of 8, to a temporary
  // name then renames it over `path`.
  static void write(const std::string& path, const NamedTensors& tensors,
                    const std::map<std::string, std::string>& metadata = {});
};

}  // namespace sae
