#!/usr/bin/python3
"""Reference for tests/data/tst_activation_store.cpp: SAELens 1.5 ActivationsStore buffer
semantics (sae_lens/training/activations_store.py @5f46329d: get_buffer, storage_buffer,
get_data_loader, next_batch), re-implemented here in plain torch with a REAL
torch.utils.data.DataLoader, run under torch.manual_seed(7), and recorded bit for bit.

Run with Debian's torch:  /usr/bin/python3 tests/reference/store_reference.py
Writes (all small):
  tests/fixtures/data/cached_small/{0,1,2,3}.safetensors  "activations" [n_i, 1, 6] F32,
      value(row r overall, column j) = 10 r + j: the cached-source input.
  tests/fixtures/data/live_source.safetensors  "activations" [256, 8] F32: rows that an
      in-memory "live model" source serves in order (SAELens shuffles/normalises those).
  tests/fixtures/data/store_expected.safetensors  what the store produced (see record()).

It also checks that the DataLoader emulation the C++ store uses (one default-generator draw for
the iterator's _base_seed when iter() is called, one more for RandomSampler's seed on the first
next(), randperm on a private generator) equals what torch 1.13's DataLoader yields, including
the default generator's state afterwards.
"""
import os
import struct
import sys

import torch
from torch.utils.data import DataLoader

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from safetensors_reference import read_file, write_file  # noqa: E402

DATA = os.path.join(HERE, "..", "fixtures", "data")
CACHED_DIR = os.path.join(DATA, "cached_small")
CACHED_FILE_ROWS = [37, 41, 29, 43]
CACHED_D_IN = 6
LIVE_ROWS, LIVE_D_IN = 256, 8

# Store settings of the two scenarios (repeated in tst_activation_store.cpp).
CACHED_CFG = dict(n_batches_in_buffer=4, store_batch_size=2, context_size=4, train_batch_size=5,
                  normalize_activations=False)
CACHED_N_BATCHES = 12
LIVE_CFG = dict(n_batches_in_buffer=6, store_batch_size=2, context_size=8, train_batch_size=7,
                normalize_activations=True)
LIVE_N_BATCHES = 20
SEED = 7


def f32_bytes(t):
    return t.detach().to(torch.float32).contiguous().numpy().tobytes()


def i64_bytes(values):
    return b"".join(struct.pack("<q", v) for v in values)


def load_activations(path):
    tensors, _ = read_file(path)
    dtype, shape, raw = tensors["activations"]
    assert dtype == "F32"
    return torch.frombuffer(bytearray(raw), dtype=torch.float32).reshape(shape)


# ---- Sources ---------------------------------------------------------------------------------
class CachedSource:
    """Files 0.safetensors, 1.safetensors, ... read in order; a partly used file continues where
    it stopped (the workbench's documented fix of SAELens's re-read quirk). Layer 0."""

    shuffles = False

    def __init__(self, folder):
        self.files = []
        i = 0
        while os.path.exists(os.path.join(folder, f"{i}.safetensors")):
            self.files.append(load_activations(os.path.join(folder, f"{i}.safetensors"))[:, 0, :])
            i += 1
        self.rows = torch.cat(self.files)
        self.pos = 0

    def next(self, n):
        assert self.pos + n <= self.rows.shape[0], "ran out"
        out = self.rows[self.pos : self.pos + n]
        self.pos += n
        return out.clone()


class LiveSource:
    """Stands in for the language model: rows in stream order, no randomness of its own."""

    shuffles = True

    def __init__(self, rows):
        self.rows = rows
        self.pos = 0

    def next(self, n):
        out = self.rows[self.pos : self.pos + n]
        self.pos += n
        return out.clone()


# ---- The store, structured like SAELens 1.5's ActivationsStore ---------------------------------
class ReferenceStore:
    def __init__(self, source, n_batches_in_buffer, store_batch_size, context_size,
                 train_batch_size, normalize_activations):
        self.source = source
        self.n_batches_in_buffer = n_batches_in_buffer
        self.store_batch_size = store_batch_size
        self.context_size = context_size
        self.train_batch_size = train_batch_size
        self.normalize_activations = normalize_activations
        self._storage_buffer = None
        self._dataloader = None

    def get_buffer(self, n_batches_in_buffer):
        total = n_batches_in_buffer * self.store_batch_size * self.context_size
        new_buffer = self.source.next(total)
        new_buffer = new_buffer.reshape(total, 1, -1)  # SAELens: [tokens, n_layers, d_in]
        if not self.source.shuffles:  # cached path returns before shuffling/normalising
            return new_buffer
        new_buffer = new_buffer[torch.randperm(new_buffer.shape[0])]
        if self.normalize_activations:
            try:
                assert self.estimated_norm_scaling_factor is not None
            except AttributeError:
                # (SAELens also asserts > 3e5 rows here; omitted for a small fixture.)
                d_in = new_buffer.shape[-1]
                self.estimated_norm_scaling_factor = (d_in**0.5) / new_buffer.norm(dim=-1).mean()
            new_buffer = new_buffer * self.estimated_norm_scaling_factor
        return new_buffer

    @property
    def storage_buffer(self):
        if self._storage_buffer is None:
            self._storage_buffer = self.get_buffer(self.n_batches_in_buffer // 2)
        return self._storage_buffer

    @property
    def dataloader(self):
        if self._dataloader is None:
            self._dataloader = self.get_data_loader()
        return self._dataloader

    def get_data_loader(self):
        mixing_buffer = torch.cat(
            [self.get_buffer(self.n_batches_in_buffer // 2), self.storage_buffer])
        mixing_buffer = mixing_buffer[torch.randperm(mixing_buffer.shape[0])]
        self._storage_buffer = mixing_buffer[: mixing_buffer.shape[0] // 2]
        return iter(DataLoader(mixing_buffer[mixing_buffer.shape[0] // 2 :],
                               batch_size=self.train_batch_size, shuffle=True))

    def next_batch(self):
        try:
            return next(self.dataloader)
        except StopIteration:
            self._dataloader = self.get_data_loader()
            return next(self.dataloader)


# ---- DataLoader emulation check ----------------------------------------------------------------
def emulated_loader(data, batch_size, with_base_seed=True):
    """What ActivationStore.cpp does for iter(DataLoader(data, batch_size, shuffle=True))."""
    if with_base_seed:
        torch.empty((), dtype=torch.int64).random_()  # _BaseDataLoaderIter._base_seed
    seed = int(torch.empty((), dtype=torch.int64).random_().item())  # RandomSampler.__iter__
    generator = torch.Generator()
    generator.manual_seed(seed)
    order = torch.randperm(data.shape[0], generator=generator)
    return [data[order[i : i + batch_size]] for i in range(0, data.shape[0], batch_size)]


def check_emulation():
    for n, b in [(16, 5), (48, 7), (20, 4), (1, 3), (1000, 64)]:
        data = torch.arange(n * 3, dtype=torch.float32).reshape(n, 3)
        torch.manual_seed(123 + n)
        real = list(DataLoader(data, batch_size=b, shuffle=True))
        after_real = torch.rand(4)
        torch.manual_seed(123 + n)
        emulated = emulated_loader(data, b)
        after_emulated = torch.rand(4)
        assert len(real) == len(emulated), (n, b)
        for x, y in zip(real, emulated):
            assert torch.equal(x, y), (n, b)
        assert torch.equal(after_real, after_emulated), "generator state differs after the loader"
        # Without the _base_seed draw the batches differ: that draw is not optional.
        torch.manual_seed(123 + n)
        wrong = emulated_loader(data, b, with_base_seed=False)
        if n > 1:
            assert any(not torch.equal(x, y) for x, y in zip(real, wrong)), (n, b)
    print("DataLoader emulation matches torch", torch.__version__)


# ---- Fixtures ----------------------------------------------------------------------------------
def write_inputs():
    os.makedirs(CACHED_DIR, exist_ok=True)
    start = 0
    for i, n in enumerate(CACHED_FILE_ROWS):
        rows = torch.arange(start, start + n, dtype=torch.float32)[:, None] * 10 + torch.arange(
            CACHED_D_IN, dtype=torch.float32)
        write_file(os.path.join(CACHED_DIR, f"{i}.safetensors"),
                   [("activations", "F32", [n, 1, CACHED_D_IN], f32_bytes(rows))])
        start += n
    g = torch.Generator()
    g.manual_seed(123)
    live = torch.randn(LIVE_ROWS, LIVE_D_IN, generator=g) * 2.0 + 0.5
    write_file(os.path.join(DATA, "live_source.safetensors"),
               [("activations", "F32", [LIVE_ROWS, LIVE_D_IN], f32_bytes(live))])


def run_scenario(prefix, store, n_batches, storage_first, out):
    torch.manual_seed(SEED)
    if storage_first:  # as b_dec initialisation does before training starts
        out.append((prefix + "_storage_initial", store.storage_buffer[:, 0, :]))
    batches = [store.next_batch()[:, 0, :] for _ in range(n_batches)]
    out.append((prefix + "_batches", torch.cat(batches)))
    out.append((prefix + "_batch_sizes", [b.shape[0] for b in batches]))
    out.append((prefix + "_storage_final", store.storage_buffer[:, 0, :]))
    out.append((prefix + "_source_rows_used", [store.source.pos]))
    # The default generator's state afterwards: catches a missing or extra draw even where
    # the permutations themselves happened to agree.
    out.append((prefix + "_trailing_rand", torch.rand(4)))
    return batches


def main():
    print("torch", torch.__version__)
    check_emulation()
    write_inputs()
    out = []

    cached = ReferenceStore(CachedSource(CACHED_DIR), **CACHED_CFG)
    batches = run_scenario("cached", cached, CACHED_N_BATCHES, True, out)
    assert [b.shape[0] for b in batches[:4]] == [5, 5, 5, 1]  # 16 rows per loader, last partial

    live_rows = load_activations(os.path.join(DATA, "live_source.safetensors"))
    live = ReferenceStore(LiveSource(live_rows), **LIVE_CFG)
    run_scenario("live", live, LIVE_N_BATCHES, False, out)
    factor = live.estimated_norm_scaling_factor
    assert factor.dtype == torch.float32 and factor.dim() == 0
    out.append(("live_scaling_factor", factor.reshape([])))

    tensors = []
    for name, value in out:
        if isinstance(value, list):
            tensors.append((name, "I64", [len(value)], i64_bytes(value)))
        else:
            tensors.append((name, "F32", list(value.shape), f32_bytes(value)))
    write_file(os.path.join(DATA, "store_expected.safetensors"), tensors,
               metadata={"torch": torch.__version__, "seed": str(SEED)})
    print("live scaling factor", factor.item(), "cached rows used", cached.source.pos,
          "live rows used", live.source.pos)
    return 0


if __name__ == "__main__":
    sys.exit(main())
