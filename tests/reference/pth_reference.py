#!/usr/bin/python3
"""Files written by torch.save (python3-torch, zip format) for tests/formats/tst_pth_reader.cpp,
plus the values they hold.

Run:  /usr/bin/python3 tests/reference/pth_reference.py
Writes tests/fixtures/pth/:
  dtypes.pth          OrderedDict: every storage dtype, a 0-dim and an empty tensor, a transposed
                      (non-contiguous) view, two views sharing one storage at offsets, a nested
                      dict and non-tensor values (skipped by the reader)
  dtypes_deflated.pth the same archive re-zipped with deflate (the reader inflates with zlib)
  linear.pth          nn.Linear(3, 2).state_dict() (carries _metadata: the pickle's BUILD)
  plain_dict.pth      a plain dict (EMPTY_DICT instead of OrderedDict)
  legacy.pth          _use_new_zipfile_serialization=False: refused with a clear message
  list.pth            a list of tensors: not a state dict
  expected.json       {file: [[name, dtype, shape, flat values], ...]} in the file's order
"""
import json
import os
import zipfile
from collections import OrderedDict

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURES = os.path.join(HERE, "..", "fixtures", "pth")


def describe(sd, prefix=""):
    out = []
    for k, v in sd.items():
        if isinstance(v, torch.Tensor):
            t = v.contiguous()
            values = t.flatten().tolist() if t.dtype != torch.bfloat16 else t.float().flatten().tolist()
            out.append([prefix + k, str(t.dtype).replace("torch.", ""), list(t.shape), values])
        elif isinstance(v, dict):
            out += describe(v, prefix + k + ".")
    return out


def main():
    os.makedirs(FIXTURES, exist_ok=True)
    torch.manual_seed(0)
    base = torch.arange(12, dtype=torch.float32).reshape(3, 4) / 4
    sd = OrderedDict()
    sd["f64"] = torch.tensor([[0.1, -2.5, 1e300], [3.0, -0.0, 7.25]], dtype=torch.float64)
    sd["f32"] = torch.tensor([1.5, -2.0, 0.1, 3.4e38], dtype=torch.float32)
    sd["f16"] = torch.tensor([1.0, -2.5, 65504.0, 0.333251953125], dtype=torch.float16)
    sd["bf16"] = torch.tensor([1.0, -3.140625, 256.0], dtype=torch.bfloat16)
    sd["i64"] = torch.tensor([0, -1, 2**62, -(2**63)], dtype=torch.int64)
    sd["i32"] = torch.tensor([[2147483647, -2147483648], [7, -7]], dtype=torch.int32)
    sd["i16"] = torch.tensor([32767, -32768, 300], dtype=torch.int16)
    sd["i8"] = torch.tensor([127, -128, 0], dtype=torch.int8)
    sd["u8"] = torch.tensor([0, 255, 128], dtype=torch.uint8)
    sd["bool"] = torch.tensor([[True, False, True]])
    sd["scalar"] = torch.tensor(-1e5)
    sd["empty"] = torch.zeros(0, 3)
    sd["transposed"] = base.t()  # strides (1, 4): saved as a view of the whole storage
    sd["row1"] = base[1]  # storage offset 4, shares base's storage
    sd["tail"] = base[1:, 2:]  # offset 6, strides (4, 1)
    sd["nested"] = OrderedDict(inner=OrderedDict(w=torch.tensor([9.0, 8.0])))
    sd["step"] = 1234  # not a tensor: skipped
    sd["name"] = "gelu-1l"
    path = os.path.join(FIXTURES, "dtypes.pth")
    torch.save(sd, path)
    expected = {"dtypes.pth": describe(sd)}

    # Deflated copy: same entries, compressed.
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(
            os.path.join(FIXTURES, "dtypes_deflated.pth"), "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            dst.writestr(info.filename, src.read(info.filename))
    expected["dtypes_deflated.pth"] = expected["dtypes.pth"]

    lin = torch.nn.Linear(3, 2).state_dict()
    torch.save(lin, os.path.join(FIXTURES, "linear.pth"))
    expected["linear.pth"] = describe(lin)

    plain = {"a": torch.tensor([1.0, 2.0]), "b": torch.tensor([[3]], dtype=torch.int64)}
    torch.save(plain, os.path.join(FIXTURES, "plain_dict.pth"))
    expected["plain_dict.pth"] = describe(plain)

    torch.save(OrderedDict(w=torch.ones(2)), os.path.join(FIXTURES, "legacy.pth"),
               _use_new_zipfile_serialization=False)
    torch.save([torch.ones(2)], os.path.join(FIXTURES, "list.pth"))

    # Round-trip self-check of the expectations with torch.load.
    back = torch.load(path)
    assert describe(back) == expected["dtypes.pth"]
    with open(os.path.join(FIXTURES, "expected.json"), "w") as f:
        json.dump(expected, f, indent=1)
    print("wrote", sorted(os.listdir(FIXTURES)))


if __name__ == "__main__":
    main()
