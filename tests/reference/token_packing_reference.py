#!/usr/bin/python3
"""Token-file fixtures and golden packed rows for tests/formats/tst_npy.cpp,
tst_token_files.cpp and tests/data/tst_token_source.cpp.

Writes tests/fixtures/tokens/files/: .npy files saved by numpy (good ones and ones the reader
must refuse), raw .bin token files, a JSONL file, and expected.json with the token lists each
file holds and the rows SAELens's get_batch_tokens packs from them. The packing below follows
ActivationsStore.get_batch_tokens / _get_next_dataset_tokens of SAELens (saelens-semantics.md §4)
statement by statement, in torch, so the C++ packer is checked against SAELens's own algorithm.

Run: /usr/bin/python3 tests/reference/token_packing_reference.py
"""
import json
import os

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "fixtures", "tokens", "files")
PARQUET_EXPECTED = os.path.join(HERE, "..", "fixtures", "tokens", "parquet", "expected.json")
BOS = 1


class Store:
    """The part of SAELens's ActivationsStore that turns dataset rows into token rows."""

    def __init__(self, rows, context_size, prepend_bos, bos):
        self.iterable_dataset = iter(rows)
        self.context_size = context_size
        self.prepend_bos = prepend_bos
        self.bos = bos
        self.n_dataset_processed = 0

    def _get_next_dataset_tokens(self):
        tokens = torch.tensor(next(self.iterable_dataset), dtype=torch.long)
        # SAELens indexes tokens[0] unguarded; an empty (or null) row is skipped here instead.
        if not self.prepend_bos and tokens.shape[0] > 0 and tokens[0] == self.bos:
            tokens = tokens[1:]
        self.n_dataset_processed += 1
        return tokens

    def get_batch_tokens(self, batch_size):
        context_size = self.context_size
        batch_tokens = torch.zeros(size=(0, context_size), dtype=torch.long)
        current_batch = []
        current_length = 0
        while batch_tokens.shape[0] < batch_size:
            tokens = self._get_next_dataset_tokens()
            token_len = tokens.shape[0]
            while token_len > 0 and batch_tokens.shape[0] < batch_size:
                space_left = context_size - current_length
                if token_len <= space_left:
                    current_batch.append(tokens[:token_len])
                    current_length += token_len
                    break
                else:
                    current_batch.append(tokens[:space_left])
                    tokens = tokens[space_left:]
                    token_len -= space_left
                    if self.prepend_bos:
                        bos_token_id_tensor = torch.tensor([self.bos], dtype=torch.long)
                        if tokens[0] != bos_token_id_tensor:
                            tokens = torch.cat((bos_token_id_tensor, tokens), dim=0)
                            token_len += 1
                    current_length = context_size
                if current_length == context_size:
                    full_batch = torch.cat(current_batch, dim=0)
                    batch_tokens = torch.cat((batch_tokens, full_batch.unsqueeze(0)), dim=0)
                    current_batch = []
                    current_length = 0
        return batch_tokens[:batch_size]


def pack(docs, context_size, prepend_bos, calls, bos=BOS, stream=False):
    """Rows of each call. A stream (1-D array) is one document whose rest is kept between
    calls, which is the same as one call for all the rows."""
    docs = [d if d is not None else [] for d in docs]
    store = Store(docs, context_size, prepend_bos, bos)
    if stream:
        rows = store.get_batch_tokens(sum(calls))
        return rows.tolist()
    out = []
    for n in calls:
        out.extend(store.get_batch_tokens(n).tolist())
    return out


def main():
    os.makedirs(OUT, exist_ok=True)
    rng = np.random.default_rng(20240607)
    expected = {"bos": BOS, "files": {}, "packing": []}

    # Documents with the cases that matter: lengths around the context sizes used below
    # (exact fits), leading BOS, a BOS right after a split, an empty document.
    lengths = [5, 8, 0, 13, 16, 3, 7, 8, 21, 1, 9, 30, 4, 16, 12, 2, 25, 6, 11, 8] * 3
    docs = []
    for i, n in enumerate(lengths):
        d = rng.integers(2, 500, size=n).tolist()
        if n and i % 3 == 0:
            d[0] = BOS
        if n > 9 and i % 4 == 1:
            d[8] = BOS  # lands at a split for context size 8
        docs.append(d)
    with open(os.path.join(OUT, "docs.jsonl"), "w") as f:
        for i, d in enumerate(docs):
            f.write(json.dumps({"tokens": d}) + "\n")
            if i == 4:
                f.write("\n")  # a blank line is skipped
    expected["files"]["docs.jsonl"] = {"docs": docs}

    # 2-D: one document per row.
    grid = rng.integers(0, 3000, size=(12, 10)).astype(np.int64)
    grid[::2, 0] = BOS
    np.save(os.path.join(OUT, "rows_i8.npy"), grid)
    expected["files"]["rows_i8.npy"] = {"shape": list(grid.shape), "docs": grid.tolist()}
    np.save(os.path.join(OUT, "rows_u2.npy"), grid.astype(np.uint16))
    expected["files"]["rows_u2.npy"] = {"shape": list(grid.shape), "docs": grid.tolist()}

    # 1-D: one token stream.
    stream = rng.integers(0, 40000, size=700)
    stream[0] = BOS
    stream[100::37] = BOS
    for name, dtype in [("stream_i4.npy", np.int32), ("stream_i2.npy", np.int16)]:
        arr = stream.astype(dtype) if dtype != np.int16 else (stream % 30000).astype(np.int16)
        np.save(os.path.join(OUT, name), arr)
        expected["files"][name] = {"shape": [len(arr)], "docs": [arr.astype(np.int64).tolist()]}
    wide = stream.astype(np.int64) * 100000  # ids beyond 32 bits
    np.save(os.path.join(OUT, "stream_i8.npy"), wide)
    expected["files"]["stream_i8.npy"] = {"shape": [len(wide)], "docs": [wide.tolist()]}
    u4 = (stream.astype(np.uint32) * 60000)
    np.save(os.path.join(OUT, "stream_u4.npy"), u4)
    expected["files"]["stream_u4.npy"] = {"shape": [len(u4)], "docs": [u4.astype(np.int64).tolist()]}

    # Raw token files.
    stream.astype("<u2").tofile(os.path.join(OUT, "stream_u16.bin"))
    expected["files"]["stream_u16.bin"] = {"dtype": "uint16", "docs": [stream.tolist()]}
    (stream.astype(np.uint32) * 70000).astype("<u4").tofile(os.path.join(OUT, "stream_u32.bin"))
    expected["files"]["stream_u32.bin"] = {
        "dtype": "uint32", "docs": [(stream.astype(np.int64) * 70000).tolist()]}

    # Arrays the reader must refuse, each with a word its message must contain.
    bad = {
        "bad_fortran.npy": (np.asfortranarray(grid), "Fortran"),
        "bad_float.npy": (grid.astype(np.float32), "f4"),
        "bad_bigendian.npy": (grid.astype(">i4"), "big-endian"),
        "bad_3d.npy": (grid.reshape(2, 6, 10), "3 dimensions"),
        "bad_int8.npy": (grid.astype(np.int8), "i1"),
    }
    for name, (arr, word) in bad.items():
        np.save(os.path.join(OUT, name), arr)
        expected["files"][name] = {"error": word}

    # Golden packing.
    def case(source, docs_, C, prepend, calls, stream_=False):
        expected["packing"].append({
            "source": source, "context_size": C, "prepend_bos": prepend, "calls": calls,
            "rows": pack(docs_, C, prepend, calls, stream=stream_)})

    for C in (8, 16):
        for prepend in (True, False):
            case("docs.jsonl", docs, C, prepend, [3, 5, 1, 4])
    case("rows_i8.npy", grid.tolist(), 16, True, [2, 2, 1])
    case("rows_i8.npy", grid.tolist(), 4, False, [3, 3])
    case("stream_i4.npy", [stream.tolist()], 32, True, [4, 3, 5], True)
    case("stream_i4.npy", [stream.tolist()], 50, False, [2, 6], True)
    case("stream_u16.bin", [stream.tolist()], 64, True, [5, 5], True)
    with open(PARQUET_EXPECTED) as f:
        pq = json.load(f)["files"]
    shard_docs = (pq["shards/data/train-00000-of-00002.parquet"]["docs"] +
                  pq["shards/data/train-00001-of-00002.parquet"]["docs"])
    case("parquet/shards", shard_docs, 24, True, [4, 4, 2])
    case("parquet/dict_snappy_v1_int64.parquet",
         pq["dict_snappy_v1_int64.parquet"]["docs"], 32, False, [6, 6, 6])

    with open(os.path.join(OUT, "expected.json"), "w") as f:
        json.dump(expected, f)
        f.write("\n")
    print("wrote", len(os.listdir(OUT)), "files,", len(expected["packing"]), "packing cases")


if __name__ == "__main__":
    main()
