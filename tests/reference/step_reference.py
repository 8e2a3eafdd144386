#!/usr/bin/python3
"""Reference optimiser steps of SAELens 1.5's training loop, for the C++ Sae + GradientClipping
+ AdamOptimizer.

What it encodes (docs/saelens-semantics.md section 5, step 7, order of 5f46329d / 1.5.0):
  if normalize_sae_decoder: unit-norm W_dec rows; forward; zero_grad; loss.backward();
  torch.nn.utils.clip_grad_norm_(params, 1.0) (the real torch 1.13 function); if
  normalize_sae_decoder: remove the gradient component parallel to each decoder row; the real
  torch.optim.Adam (betas (0.9, 0.999), eps 1e-8, lr set per step) steps. scaling_factor has
  no gradient, so neither clipping nor Adam see it. The SAE is the plain-torch RefSae of
  sae_reference.py.
  * "single_step": one step with the gradients after clipping / parallel removal and the
    weights after the step.
  * "sequences": 5 consecutive steps from a fixed SAE with a different lr and L1 coefficient
    at each step, for three configurations (SAELens default, the notebook's, ghost grads).
  * "clipping": clip_grad_norm_ alone (below and above the limit); "adam": torch.optim.Adam
    alone for 5 steps with given gradients (betas (0, 0.999) and (0.9, 0.999)).

Regenerate (needs Debian's python3-torch 1.13):
    /usr/bin/python3 tests/reference/step_reference.py
writes tests/fixtures/sae/steps.json.
"""

import json
import os
import sys

sys.dont_write_bytecode = True  # no __pycache__ next to the scripts

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from sae_reference import (BATCH, D_IN, D_SAE, OUT_DIR, RefSae,  # noqa: E402
                           base_parameters, tensor_json)

BETAS = (0.9, 0.999)
LRS = [1e-3, 2e-3, 5e-4, 1e-3, 3e-3]
COEFFICIENTS = [0.0, 0.01, 0.02, 0.05, 0.05]

SEQUENCE_CASES = [
    ("default", dict()),
    ("notebook", dict(normalize_sae_decoder=False, apply_b_dec_to_input=False,
                      scale_sparsity_penalty_by_decoder_norm=True)),
    ("ghost", dict(use_ghost_grads=True)),
]


def remove_parallel_gradient(sae):
    """grad_i -= (grad_i . W_i) W_i. SAELens writes both products as einops.einsum, i.e.
    torch.einsum; the same contractions are used here because a one-ulp difference in this
    gradient can flip a feature across the relu boundary a few steps later."""
    with torch.no_grad():
        w = sae.W_dec
        parallel = torch.einsum("ij,ij->i", w.grad, w)
        w.grad -= torch.einsum("i,ij->ij", parallel, w)


def train_step(sae, optimizer, x, lr, l1_coefficient, dead_mask):
    if sae.normalize_sae_decoder:
        with torch.no_grad():
            sae.W_dec /= sae.W_dec.norm(dim=1, keepdim=True)
    out = sae.forward(x, l1_coefficient, dead_mask)
    optimizer.zero_grad()
    out["loss"].backward()
    total_norm = torch.nn.utils.clip_grad_norm_(sae.parameters(), 1.0)
    if sae.normalize_sae_decoder:
        remove_parallel_gradient(sae)
    for group in optimizer.param_groups:
        group["lr"] = lr
    optimizer.step()
    return out, float(total_norm.item())


def params_json(sae):
    return {name: tensor_json(getattr(sae, name)) for name in ["W_enc", "b_enc", "W_dec", "b_dec"]}


def make_sae(options, params):
    sae = RefSae(D_IN, D_SAE, **options)
    sae.load(params)
    optimizer = torch.optim.Adam(sae.parameters(), lr=LRS[0], betas=BETAS)
    return sae, optimizer


def main():
    torch.set_num_threads(1)
    params = base_parameters(21)
    torch.manual_seed(22)
    batches = [torch.randn(BATCH, D_IN) * 2 + 0.5 for _ in LRS]
    dead_mask = torch.zeros(D_SAE, dtype=torch.bool)
    dead_mask[1::4] = True

    # One step (SAELens defaults + normalize_sae_decoder), everything recorded.
    sae, optimizer = make_sae(dict(), params)
    out, total_norm = train_step(sae, optimizer, batches[0], LRS[0], 0.05, None)
    single = {
        "options": {}, "lr": LRS[0], "l1_coefficient": 0.05, "total_norm": total_norm,
        "loss": float(out["loss"].item()),
        "grads": {name: tensor_json(getattr(sae, name).grad)
                  for name in ["W_enc", "b_enc", "W_dec", "b_dec"]},
        "params_after": params_json(sae),
    }

    sequences = []
    for name, options in SEQUENCE_CASES:
        sae, optimizer = make_sae(options, params)
        steps = []
        for x, lr, coefficient in zip(batches, LRS, COEFFICIENTS):
            out, total_norm = train_step(sae, optimizer, x, lr, coefficient, dead_mask)
            steps.append({"loss": float(out["loss"].item()),
                          "mse_loss": float(out["mse_loss"].item()),
                          "l1_loss": float(out["l1_loss"].item()),
                          "ghost_grad_loss": float(out["ghost_grad_loss"].item()),
                          "total_norm": total_norm})
        sequences.append({"name": name, "options": options, "steps": steps,
                          "params_after": params_json(sae)})

    # clip_grad_norm_ alone on small tensors, once below and once above the limit.
    clipping = []
    for scale in [0.01, 10.0]:
        torch.manual_seed(23)
        tensors = [torch.zeros(shape, requires_grad=True) for shape in [(3, 4), (5,), (2, 2)]]
        for t in tensors:
            t.grad = torch.randn(t.shape) * scale
        before = [tensor_json(t.grad) for t in tensors]
        total = torch.nn.utils.clip_grad_norm_(tensors, 1.0)
        clipping.append({"grads_before": before, "grads_after": [tensor_json(t.grad) for t in tensors],
                         "total_norm": float(total.item())})

    # torch.optim.Adam alone: given gradients, varying lr, with SAELens's default beta1 = 0 and
    # with the notebook's 0.9.
    adam = []
    for betas in [(0.0, 0.999), (0.9, 0.999)]:
        torch.manual_seed(24)
        param = torch.randn(5, 3, requires_grad=True)
        start = tensor_json(param)
        optimizer = torch.optim.Adam([param], lr=1e-3, betas=betas)
        grads, after = [], []
        for lr in LRS:
            param.grad = torch.randn(5, 3)
            grads.append(tensor_json(param.grad))
            optimizer.param_groups[0]["lr"] = lr
            optimizer.step()
            after.append(tensor_json(param))
        state = optimizer.state[param]
        adam.append({"betas": list(betas), "start": start, "grads": grads, "params_after": after,
                     "exp_avg": tensor_json(state["exp_avg"]),
                     "exp_avg_sq": tensor_json(state["exp_avg_sq"])})

    payload = {
        "betas": list(BETAS), "lrs": LRS, "l1_coefficients": COEFFICIENTS,
        "params": {k: tensor_json(v) for k, v in params.items()},
        "batches": [tensor_json(x) for x in batches],
        "dead_mask": [bool(v) for v in dead_mask.tolist()],
        "single_step": single, "sequences": sequences, "clipping": clipping, "adam": adam,
    }
    os.makedirs(OUT_DIR, exist_ok=True)
    with open(os.path.join(OUT_DIR, "steps.json"), "w") as f:
        json.dump(payload, f, separators=(",", ":"))
        f.write("\n")


if __name__ == "__main__":
    main()
