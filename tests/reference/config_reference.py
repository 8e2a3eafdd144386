#!/usr/bin/python3
"""Golden strings for PythonFormat and RunConfig's run name and verbose preamble.

What it encodes:
  * repr(float) and format(x, ".{p}e") of CPython (the f-strings SAELens 1.5 uses), for
    hand-picked edge cases (layout switch at 1e-4 / 1e16, ties, subnormals, -0.0) plus
    seeded random doubles across all magnitudes. Values are stored as float.hex() strings so
    the C++ side reads back the exact double.
  * The default run name of LanguageModelSAERunnerConfig.__post_init__:
        f"{d_sae}-L1-{l1_coefficient}-LR-{lr}-Tokens-{training_tokens:3.3e}"
  * The lines printed when verbose is set (sae_lens/training/config.py @5f46329d), with the
    same integer arithmetic and true divisions.

Regenerate (plain CPython 3, no packages):
    /usr/bin/python3 tests/reference/config_reference.py
writes tests/fixtures/config/python_format.json.
"""

import json
import math
import os
import random
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "fixtures", "config", "python_format.json")

EDGE_CASES = [
    0.0, -0.0, 1.0, -1.0, 0.1, 0.2, 0.3, 0.1 + 0.2, 1 / 3, 2 / 3, 0.5, 1.5, 2.5,
    5e-05, 0.005, 0.0001, 0.00012345, 1e-05, 9.999e-05, 0.001024, 1.048576, 4194.304,
    1048576.0, 123.0, 1e15, 1e16, 9999999999999998.0, 1.2345678901234567e16, 1e22, 1e23,
    1e-7, 1.5e-7, 3e-4, 2e-4, 1e-3, 5e-3, 1e-2, 100.0, 1e100, 1e-100, 5e-324,
    2.2250738585072014e-308, 1.7976931348623157e308, 81920000.0, 8.192e7, 4096000.0,
    0.9, 0.999, 0.99, 123456.789, 2**53, 2**53 + 2.0, 2**63, 0.30000000000000004,
    1e-4 - 1e-20, 9.5e15, 9.999999999999999e15,
]
EDGE_CASES = [float(x) for x in EDGE_CASES]


def special_cases():
    return [math.inf, -math.inf, math.nan]


def random_doubles(count, seed):
    rng = random.Random(seed)
    values = []
    for _ in range(count):
        kind = rng.random()
        if kind < 0.5:
            # Any finite double: random bit patterns.
            while True:
                bits = rng.getrandbits(64)
                x = struct.unpack("<d", struct.pack("<Q", bits))[0]
                if math.isfinite(x):
                    break
        elif kind < 0.8:
            # Magnitudes around the layout switch points and typical config values.
            x = rng.uniform(-1, 1) * 10 ** rng.randint(-8, 18)
        else:
            # Short decimals as people type them (1e-3, 0.25, 3.5e-5, ...).
            x = float(f"{rng.randint(1, 999)}e{rng.randint(-9, 17)}")
        values.append(x)
    return values


def encode(x):
    if math.isnan(x):
        return "nan"
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    return x.hex()


def preamble(cfg):
    """The verbose block of LanguageModelSAERunnerConfig.__post_init__ (SAELens 1.5)."""
    d_sae = cfg["d_in"] * cfg["expansion_factor"]
    S, C, N = cfg["store_batch_size"], cfg["context_size"], cfg["n_batches_in_buffer"]
    B = cfg["train_batch_size"]
    lines = [f"Run name: {d_sae}-L1-{cfg['l1_coefficient']}-LR-{cfg['lr']}-Tokens-{cfg['training_tokens']:3.3e}"]
    n_tokens_per_buffer = S * C * N
    lines.append(f"n_tokens_per_buffer (millions): {n_tokens_per_buffer / 10 ** 6}")
    n_contexts_per_buffer = S * N
    lines.append(f"Lower bound: n_contexts_per_buffer (millions): {n_contexts_per_buffer / 10 ** 6}")
    total_training_steps = (cfg["training_tokens"] + cfg["finetuning_tokens"]) // B
    lines.append(f"Total training steps: {total_training_steps}")
    lines.append(f"Total wandb updates: {total_training_steps // cfg['wandb_log_frequency']}")
    n_feature_window_samples = total_training_steps // cfg["feature_sampling_window"]
    lines.append(
        f"n_tokens_per_feature_sampling_window (millions): {(cfg['feature_sampling_window'] * C * B) / 10 ** 6}"
    )
    lines.append(
        f"n_tokens_per_dead_feature_window (millions): {(cfg['dead_feature_window'] * C * B) / 10 ** 6}"
    )
    lines.append(f"We will reset the sparsity calculation {n_feature_window_samples} times.")
    lines.append(f"Number tokens in sparsity calculation window: {cfg['feature_sampling_window'] * B:.2e}")
    if cfg["use_ghost_grads"]:
        lines.append("Using Ghost Grads.")
    return lines


PREAMBLE_CONFIGS = [
    # The notebook's config (the seed shows these nine lines).
    dict(d_in=512, expansion_factor=64, l1_coefficient=0.005, lr=5e-05, training_tokens=81920000,
         finetuning_tokens=0, store_batch_size=16, context_size=1024, n_batches_in_buffer=64,
         train_batch_size=4096, wandb_log_frequency=50, feature_sampling_window=1000,
         dead_feature_window=1000, use_ghost_grads=False),
    # SAELens 1.5 defaults (with ghost grads on).
    dict(d_in=512, expansion_factor=4, l1_coefficient=1e-3, lr=3e-4, training_tokens=2000000,
         finetuning_tokens=0, store_batch_size=32, context_size=128, n_batches_in_buffer=20,
         train_batch_size=4096, wandb_log_frequency=10, feature_sampling_window=2000,
         dead_feature_window=1000, use_ghost_grads=True),
    # The synthetic demo preset.
    dict(d_in=64, expansion_factor=8, l1_coefficient=0.5, lr=1e-3, training_tokens=3072000,
         finetuning_tokens=0, store_batch_size=8, context_size=128, n_batches_in_buffer=8,
         train_batch_size=1024, wandb_log_frequency=10, feature_sampling_window=500,
         dead_feature_window=500, use_ghost_grads=False),
    # Odd sizes: non-terminating quotients, finetuning tokens, the replication script's 200k steps.
    dict(d_in=768, expansion_factor=32, l1_coefficient=8e-05, lr=4e-4, training_tokens=819200000,
         finetuning_tokens=12345678, store_batch_size=7, context_size=333, n_batches_in_buffer=3,
         train_batch_size=3000, wandb_log_frequency=7, feature_sampling_window=333,
         dead_feature_window=17, use_ghost_grads=False),
    dict(d_in=1, expansion_factor=1, l1_coefficient=0.1 + 0.2, lr=1.0, training_tokens=1,
         finetuning_tokens=0, store_batch_size=1, context_size=1, n_batches_in_buffer=2,
         train_batch_size=1, wandb_log_frequency=1, feature_sampling_window=1,
         dead_feature_window=1, use_ghost_grads=True),
]


def main():
    doubles = EDGE_CASES + [-x for x in EDGE_CASES if x != 0] + special_cases()
    doubles += random_doubles(1200, seed=20240507)
    repr_cases = [{"x": encode(x), "repr": repr(x)} for x in doubles]

    rng = random.Random(7)
    sci_cases = []
    for x in EDGE_CASES + special_cases() + random_doubles(250, seed=99):
        for p in (0, 1, 2, 3, rng.randint(4, 17)):
            sci_cases.append({"x": encode(x), "precision": p, "text": format(x, f".{p}e")})

    run_names = []
    for d_in, ef, l1, lr, tokens in [
        (512, 64, 0.005, 5e-05, 81920000),
        (512, 4, 1e-3, 3e-4, 2000000),
        (64, 8, 0.5, 1e-3, 3072000),
        (512, 64, 2.0, 5e-05, 819200000),
        (768, 32, 8e-05, 0.0004, 1),
        (1, 1, 0.1 + 0.2, 1e-7, 0),
        (2048, 16, 1e-4, 1e-5, 123456789),
        (512, 64, 1e16, 1e-16, 999500000),
        (512, 64, 12.5, 2.5e-3, 99950000),
    ]:
        name = f"{d_in * ef}-L1-{float(l1)}-LR-{float(lr)}-Tokens-{tokens:3.3e}"
        run_names.append({"d_in": d_in, "expansion_factor": ef, "l1_coefficient": encode(float(l1)),
                          "lr": encode(float(lr)), "training_tokens": tokens, "run_name": name})

    preambles = [{"config": cfg | {"l1_coefficient": encode(float(cfg["l1_coefficient"])),
                                   "lr": encode(float(cfg["lr"]))},
                  "lines": preamble(cfg)} for cfg in PREAMBLE_CONFIGS]

    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "w") as f:
        json.dump({"generator": "tests/reference/config_reference.py", "repr": repr_cases,
                   "scientific": sci_cases, "run_names": run_names, "preambles": preambles},
                  f, indent=1)
        f.write("\n")
    print(f"wrote {OUT}: {len(repr_cases)} repr, {len(sci_cases)} scientific, "
          f"{len(run_names)} run names, {len(preambles)} preambles")


if __name__ == "__main__":
    main()
