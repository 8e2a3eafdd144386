#!/usr/bin/python3
"""Reference for core/train/Bf16Gemm (tests/train/tst_bf16_gemm.cpp): the encoder product under
SAELens's `autocast` on CPU, where torch.autocast(bfloat16) rounds both matmul inputs to
bfloat16 and accumulates in fp32. Written here as torch 1.13 does it without autocast:
    C = torch.mm(A.bfloat16().float(), B.bfloat16().float())
once in float64 (exact up to the last bit for these sizes: the products of two bf16 values are
exact and the float64 sum of a few hundred of them loses nothing the fp32 test tolerance could
see) and once in float32 (torch's own accumulation order, for the record).

Run (Debian's python3-torch 1.13):  /usr/bin/python3 tests/reference/bf16_gemm_reference.py
Writes tests/fixtures/bf16/gemm.safetensors (about 0.5 MB) with, per case NAME:
  NAME.a [m, k] F32, NAME.b [k, n] F32  inputs: torch.randn from torch.Generator seeded per
      case, b scaled by 1/sqrt(k) like W_enc; A's first row is overwritten with values that sit
      exactly on bf16 rounding ties (both parities) and just beside them, so that
      round-to-nearest-even decides the result;
  NAME.c64 [m, n] F64, NAME.c32 [m, n] F32  the product as above.
and the conversion cases: convert.in [N] F32 (special values, ties, subnormals, overflow, NaNs,
then random bit patterns) and convert.out [N] BF16 = convert.in.bfloat16() (torch's
round-to-nearest-even; NaN -> a NaN).
Metadata "cases": the case names, comma-separated, in file order.
"""
import math
import os
import struct
import sys

sys.dont_write_bytecode = True  # no __pycache__ next to the scripts

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from safetensors_reference import write_file  # noqa: E402

OUT_DIR = os.path.join(HERE, "..", "fixtures", "bf16")

# (name, m, k, n, seed): odd sizes (k below one 32-row block, n below one 64-column block),
# sizes with partial blocks after full ones, and the training d_in with a narrow d_sae.
CASES = [
    ("odd", 3, 7, 33, 1),
    ("single", 1, 1, 1, 2),
    ("tails", 17, 45, 129, 3),
    ("wide", 24, 96, 320, 4),
    ("d_in512", 8, 512, 96, 5),
]


def f32_from_bits(bits):
    return struct.unpack("<f", struct.pack("<I", bits & 0xFFFFFFFF))[0]


# Bit patterns whose rounding to bf16 is decided by the tie rule or sits next to it.
TIE_BITS = [
    0x3F808000,  # 1 + 2^-8: tie, kept half even -> 0x3F80
    0x3F818000,  # tie, kept half odd -> 0x3F82
    0x3F808001,  # just above the tie -> 0x3F81
    0x3F807FFF,  # just below -> 0x3F80
    0xBF808000,  # negative tie, even -> 0xBF80
    0xBF818000,  # negative tie, odd -> 0xBF82
    0x40490FDB,  # pi
    0x3DCCCCCD,  # 0.1
]

SPECIAL_BITS = TIE_BITS + [
    0x00000000, 0x80000000,  # +-0
    0x7F800000, 0xFF800000,  # +-inf
    0x7F7FFFFF, 0xFF7FFFFF,  # +-FLT_MAX: round up past the largest bf16 -> +-inf
    0x7F7F7FFF,  # largest float that stays finite
    0x7FC00000, 0xFFC00000, 0x7F800001, 0x7FBFFFFF, 0xFF800001, 0x7FFFFFFF,  # NaNs, incl. signalling
    0x00000001, 0x00008000, 0x00018000, 0x007FFFFF, 0x80008001,  # subnormals, subnormal ties
    0x00800000, 0x0080FFFF,  # smallest normal, rounding up to the next
    0x3F800000, 0xC2F6E979,  # 1, -123.456
]


def convert_inputs():
    generator = torch.Generator().manual_seed(11)
    random_bits = torch.randint(0, 2**32, (4096,), generator=generator, dtype=torch.int64)
    bits = SPECIAL_BITS + [int(b) for b in random_bits]
    # N = 4096 + specials: not a multiple of 16, so the vector tail is exercised too.
    raw = b"".join(struct.pack("<I", b) for b in bits)
    return torch.frombuffer(bytearray(raw), dtype=torch.float32).clone()


def raw(t):
    if t.dtype == torch.bfloat16:
        t = t.view(torch.int16)
    return t.contiguous().numpy().tobytes()


def case_tensors(name, m, k, n, seed):
    generator = torch.Generator().manual_seed(seed)
    a = torch.randn(m, k, generator=generator, dtype=torch.float32)
    b = torch.randn(k, n, generator=generator, dtype=torch.float32) / math.sqrt(k)
    ties = torch.tensor([f32_from_bits(v) for v in TIE_BITS], dtype=torch.float32)
    count = min(k, len(ties))
    a[0, :count] = ties[:count]
    a_r = a.bfloat16().float()
    b_r = b.bfloat16().float()
    c64 = torch.mm(a_r.double(), b_r.double())
    c32 = torch.mm(a_r, b_r)
    return [
        (f"{name}.a", "F32", [m, k], raw(a)),
        (f"{name}.b", "F32", [k, n], raw(b)),
        (f"{name}.c64", "F64", [m, n], raw(c64)),
        (f"{name}.c32", "F32", [m, n], raw(c32)),
    ]


def main():
    os.makedirs(OUT_DIR, exist_ok=True)
    tensors = []
    for name, m, k, n, seed in CASES:
        tensors += case_tensors(name, m, k, n, seed)
    convert_in = convert_inputs()
    convert_out = convert_in.bfloat16()
    # Self-check of the tie cases against the values stated above.
    expected_ties = [0x3F80, 0x3F82, 0x3F81, 0x3F80, 0xBF80, 0xBF82]
    got = [int(v) & 0xFFFF for v in convert_out.view(torch.int16)[: len(expected_ties)]]
    assert got == expected_ties, [hex(v) for v in got]
    tensors.append(("convert.in", "F32", [convert_in.numel()], raw(convert_in)))
    tensors.append(("convert.out", "BF16", [convert_out.numel()], raw(convert_out)))
    path = os.path.join(OUT_DIR, "gemm.safetensors")
    write_file(path, tensors, metadata={"cases": ",".join(c[0] for c in CASES)})
    print(f"wrote {path} ({os.path.getsize(path)} bytes)")


if __name__ == "__main__":
    main()
