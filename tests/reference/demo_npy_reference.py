#!/usr/bin/python3
"""numpy.save's own bytes for core/demo/NpyTokenFile: the C++ writer must produce these files
byte for byte (1-D '<i4'), and reject the others (int64, 2-D) with a clear message.

Run:  /usr/bin/python3 tests/reference/demo_npy_reference.py
Writes tests/fixtures/demo/numpy_{int32,empty_int32,int64,2d_int32}.npy.
"""
import os

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURES = os.path.join(HERE, "..", "fixtures", "demo")


def main():
    os.makedirs(FIXTURES, exist_ok=True)
    files = {
        "numpy_int32.npy": np.array([0, 1, -5, 2147483647, -2147483648, 300, 7], dtype=np.int32),
        "numpy_empty_int32.npy": np.zeros((0,), dtype=np.int32),
        "numpy_int64.npy": np.array([1, 2, 3], dtype=np.int64),
        "numpy_2d_int32.npy": np.zeros((2, 3), dtype=np.int32),
    }
    for name, array in files.items():
        np.save(os.path.join(FIXTURES, name), array)
        print("wrote", name)


if __name__ == "__main__":
    main()
