#!/usr/bin/python3
"""Independent safetensors writer (no torch, no safetensors package: the format is hand-encoded
with struct/json) and the fixtures tests/formats/tst_safetensors.cpp reads back.

Run:  /usr/bin/python3 tests/reference/safetensors_reference.py
Writes tests/fixtures/formats/{all_dtypes,unpadded}.safetensors. The values below are repeated
literally in tst_safetensors.cpp; change both together.

Also imported by store_reference.py for its fixture files (write_file / read_file).

  /usr/bin/python3 tests/reference/safetensors_reference.py --dump FILE
prints {"header_length": N, "tensors": [[name, dtype, shape, hex of the raw bytes], ...]} in
header order, as this independent reader sees FILE (tst_safetensors checks files written by the
C++ writer this way; any python3 works, no torch needed).
"""
import json
import os
import struct
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURES = os.path.join(HERE, "..", "fixtures", "formats")

# dtype -> (struct format per element, byte size); BF16 is encoded by hand below.
FORMATS = {
    "F64": ("<d", 8),
    "F32": ("<f", 4),
    "F16": ("<e", 2),
    "I64": ("<q", 8),
    "I32": ("<i", 4),
    "I16": ("<h", 2),
    "I8": ("<b", 1),
    "U8": ("<B", 1),
    "BOOL": ("<?", 1),
}


def encode(dtype, values):
    if dtype == "BF16":
        out = b""
        for v in values:
            f32 = struct.pack("<f", v)
            # Only values exact in bf16 are used: the low 16 bits of the float32 must be zero.
            assert f32[:2] == b"\x00\x00", f"{v} is not exactly representable in bf16"
            out += f32[2:]
        return out
    fmt, _ = FORMATS[dtype]
    return b"".join(struct.pack(fmt, v) for v in values)


def numel(shape):
    n = 1
    for d in shape:
        n *= d
    return n


def write_file(path, tensors, metadata=None, pad=True, order=None):
    """tensors: list of (name, dtype, shape, raw little-endian bytes), data laid out in list
    order; `order` (list of names) optionally permutes the header entries independently of the
    data layout. pad=False leaves the header length unaligned (other writers do that)."""
    header = {}
    if metadata is not None:
        header["__metadata__"] = metadata
    offsets = {}
    offset = 0
    for name, dtype, shape, raw in tensors:
        offsets[name] = (offset, offset + len(raw))
        offset += len(raw)
    entries = {name: (dtype, shape) for name, dtype, shape, _ in tensors}
    for name in order or [t[0] for t in tensors]:
        dtype, shape = entries[name]
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": list(offsets[name])}
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    if pad:
        text += b" " * ((8 - len(text) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for _, _, _, raw in tensors:
            f.write(raw)


def read_file(path):
    """Minimal reader (for self-checks): {name: (dtype, shape, raw bytes)}, metadata."""
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + n])
    meta = header.pop("__metadata__", None)
    buf = data[8 + n :]
    out = {}
    for name, e in header.items():
        b, end = e["data_offsets"]
        out[name] = (e["dtype"], e["shape"], buf[b:end])
    return out, meta


# ---- The fixture values (mirrored in tst_safetensors.cpp) --------------------------------
F64_VALUES = [0.0, -1.5, 3.141592653589793, 1e300, -2.5e-310, 6.02214076e23]  # shape [2, 3]
F32_VALUES = [1.0, -2.0, 0.1, 3.4028234663852886e38, 1.401298464324817e-45, -0.0]  # [3, 2]
F16_VALUES = [1.0, -2.5, 65504.0, 6.103515625e-05, 5.960464477539063e-08, float("inf"),
              -0.0, 0.333251953125]  # [8]; max, min normal, min subnormal, inf
BF16_VALUES = [1.0, -3.140625, 9.183549615799121e-41, 3.3895313892515355e38]  # [2, 2]; 2^-133 subnormal, max
I64_VALUES = [0, -1, 9223372036854775807, -9223372036854775808, 1 << 40]  # [5]
I32_VALUES = [2147483647, -2147483648, 7, -7]  # [2, 2]
I16_VALUES = [32767, -32768, 300]  # [3]
I8_VALUES = [127, -128, 0, -1]  # [4]
U8_VALUES = [0, 255, 128]  # [3]
BOOL_VALUES = [True, False, True, True, False, False]  # [2, 1, 3]
SCALAR_VALUE = [42.5]  # F32, shape []


def all_dtypes():
    return [
        ("f64", "F64", [2, 3], encode("F64", F64_VALUES)),
        ("f32", "F32", [3, 2], encode("F32", F32_VALUES)),
        ("f16", "F16", [8], encode("F16", F16_VALUES)),
        ("bf16", "BF16", [2, 2], encode("BF16", BF16_VALUES)),
        ("i64", "I64", [5], encode("I64", I64_VALUES)),
        ("i32", "I32", [2, 2], encode("I32", I32_VALUES)),
        ("i16", "I16", [3], encode("I16", I16_VALUES)),
        ("i8", "I8", [4], encode("I8", I8_VALUES)),
        ("u8", "U8", [3], encode("U8", U8_VALUES)),
        ("bool", "BOOL", [2, 1, 3], encode("BOOL", BOOL_VALUES)),
        ("scalar", "F32", [], encode("F32", SCALAR_VALUE)),
        ("empty", "F32", [0, 4], b""),
    ]


def dump(path):
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + n])  # dicts keep the file's key order
    tensors, _ = read_file(path)
    out = [[name, dtype, shape, raw.hex()] for name, (dtype, shape, raw) in tensors.items()]
    print(json.dumps({"header_length": n, "keys": list(header.keys()), "tensors": out}))
    return 0


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "--dump":
        return dump(sys.argv[2])
    os.makedirs(FIXTURES, exist_ok=True)
    tensors = all_dtypes()
    write_file(os.path.join(FIXTURES, "all_dtypes.safetensors"), tensors,
               metadata={"format": "pt", "written_by": "safetensors_reference.py"})
    # Header order differs from data order (i64 first in the buffer, listed last), no padding,
    # no metadata: readers must follow the header order and not assume alignment.
    small = [
        ("i64", "I64", [2], encode("I64", [5, -6])),
        ("weights", "F32", [2, 2], encode("F32", [0.5, -0.25, 8.0, 1e-3])),
        ("flag", "BOOL", [1], encode("BOOL", [True])),
    ]
    path = os.path.join(FIXTURES, "unpadded.safetensors")
    write_file(path, small, metadata=None, pad=False, order=["weights", "flag", "i64"])
    # Self-check: the files parse back with our own minimal reader.
    for name in ("all_dtypes.safetensors", "unpadded.safetensors"):
        parsed, _ = read_file(os.path.join(FIXTURES, name))
        for n, (dtype, shape, raw) in parsed.items():
            size = 2 if dtype == "BF16" else FORMATS[dtype][1]
            assert len(raw) == numel(shape) * size, (name, n)
    with open(path, "rb") as f:
        assert struct.unpack("<Q", f.read(8))[0] % 8 != 0, "unpadded fixture must be unaligned"
    print("wrote", FIXTURES)
    return 0


if __name__ == "__main__":
    sys.exit(main())
