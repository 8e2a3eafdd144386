#!/usr/bin/python3
"""Golden values for tests/train/tst_language_model_training.cpp and
tests/app/tst_cache_activations.cpp: a language-model run on the gelu_1l_safetensors fixture
model (tests/reference/model_reference.py) over a 1-D token stream.

Run:  /usr/bin/python3 tests/reference/lm_training_reference.py
Writes tests/fixtures/lm_training/:
  tokens.npy          int32 stream: BOS (1) then tokens drawn from [2, d_vocab) (never BOS, so
                      the packer's "remainder already starts with BOS" case never arises)
  config.json         the tiny run (paths relative to this folder)
  golden.safetensors  "rows" [N, C] the stream packed as SAELens's get_batch_tokens packs one
                      long document with prepend_bos (row 0 = stream[0:C], then BOS + the next
                      C - 1 tokens), "clean_loss" [N] the model's own loss per row, "ablation_loss"
                      [N] with blocks.0.hook_mlp_out zeroed, "hook" [N, C, d_model] the hook's
                      values (the activations a cache of the stream must hold, in stream order).
The forward pass is model_reference.forward (plain PyTorch, independent of the C++ code).
"""
import json
import os
import sys
from collections import OrderedDict

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import model_reference as mr  # noqa: E402
import safetensors_reference as st  # noqa: E402

FIXTURES = os.path.join(HERE, "..", "fixtures")
OUT = os.path.join(FIXTURES, "lm_training")
MODEL = os.path.join(FIXTURES, "model", "gelu_1l_safetensors")
HOOK = "blocks.0.hook_mlp_out"
BOS, CONTEXT, STREAM_TOKENS = 1, 8, 2402  # 343 rows of 8 (C + 342 * (C - 1))

CONFIG = OrderedDict(
    model_name="../model/gelu_1l_safetensors",
    hook_point="blocks.{layer}.hook_mlp_out",
    hook_point_layer=0,
    d_in=16,
    dataset_path="tokens.npy",
    is_dataset_tokenized=True,
    context_size=CONTEXT,
    prepend_bos=True,
    expansion_factor=2,
    b_dec_init_method="mean",
    n_batches_in_buffer=4,
    store_batch_size=4,
    train_batch_size=16,
    training_tokens=384,
    l1_coefficient=1e-3,
    lr=1e-3,
    lr_warm_up_steps=0,
    log_to_wandb=False,
    wandb_log_frequency=2,
    eval_every_n_wandb_logs=4,
    n_eval_batches=1,
    eval_batch_size_prompts=4,
    n_checkpoints=0,
    seed=42,
    num_threads=1,
)


def load_model():
    with open(os.path.join(MODEL, "config.json")) as f:
        cfg = json.load(f)
    raw, _ = st.read_file(os.path.join(MODEL, "model.safetensors"))
    sd = OrderedDict()
    for name, (dtype, shape, data) in raw.items():
        assert dtype == "F32", (name, dtype)
        sd[name] = torch.from_numpy(np.frombuffer(data, dtype="<f4").copy()).reshape(shape)
    return cfg, sd


def pack(stream):
    rows = [stream[:CONTEXT]]
    pos = CONTEXT
    while pos + CONTEXT - 1 <= len(stream):
        rows.append(np.concatenate([[BOS], stream[pos : pos + CONTEXT - 1]]))
        pos += CONTEXT - 1
    return np.stack(rows).astype(np.int64)


def main():
    torch.set_num_threads(1)
    cfg, sd = load_model()
    gen = np.random.default_rng(2024)
    stream = np.concatenate([[BOS], gen.integers(2, cfg["d_vocab"], STREAM_TOKENS - 1)]).astype(np.int32)
    os.makedirs(OUT, exist_ok=True)
    np.save(os.path.join(OUT, "tokens.npy"), stream)
    with open(os.path.join(OUT, "config.json"), "w") as f:
        json.dump(CONFIG, f, indent=2)

    rows = torch.from_numpy(pack(stream))
    hooks = {}

    def record(name, value):
        if name == HOOK:
            hooks["hook"] = value.detach().clone()
        return value

    def zero(name, value):
        return torch.zeros_like(value) if name == HOOK else value

    def per_row_loss(logits):
        log_probs = logits.log_softmax(dim=-1)
        predicted = log_probs[:, :-1].gather(dim=-1, index=rows[:, 1:, None])[..., 0]
        return -predicted.mean(dim=1)

    with torch.no_grad():
        clean = per_row_loss(mr.forward(cfg, sd, rows, record))
        ablation = per_row_loss(mr.forward(cfg, sd, rows, zero))
    goldens = OrderedDict(rows=rows, clean_loss=clean.float(), ablation_loss=ablation.float(),
                          hook=hooks["hook"].float())
    mr.write_safetensors(os.path.join(OUT, "golden.safetensors"), goldens)
    print("rows", tuple(rows.shape), "mean clean loss", float(clean.mean()),
          "mean ablation loss", float(ablation.mean()))


if __name__ == "__main__":
    main()
