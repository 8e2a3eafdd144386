#pragma once
// PyTorch `.pth` / `.pt` files written by torch.save (the zip format of PyTorch >= 1.6) for a
// state dict: the zip archive, the subset of the pickle protocol that state dicts use, and the raw
// little-endian storages, read natively. LibTorch's pickle_load cannot read an OrderedDict state
// dict (pytorch/pytorch #100741), and Neel Nanda's checkpoints are such files.
#include <string>
#include <utility>
#include <vector>

#include <torch/torch.h>

namespace sae {

class PthReader {
 public:
  using NamedTensors = std::vector<std::pair<std::string, torch::Tensor>>;

  // Every tensor of the state dict, in the file's order, as contiguous CPU tensors of the stored
  // dtype (float64/32/16, bfloat16, int64/32/16/8, uint8, bool). Nested dicts give dotted names
  // ("model.embed.W_E"); values that are not tensors are skipped. Throws std::runtime_error
  // naming the file and the problem: not a zip (or the pre-1.6 legacy format), truncated,
  // corrupt (CRC, pickle, storage bounds), an unsupported pickle opcode, global or dtype.
  static NamedTensors read(const std::string& path);
};

}  // namespace sae
