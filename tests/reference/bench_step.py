#!/usr/bin/python3
"""The dense SAE training step of `sae-train --benchmark` in PyTorch eager, for a side-by-side
comparison: same shapes, same recipe (heuristic init, W_enc = W_dec^T, decoder-norm-scaled L1,
no b_dec subtraction), same L0 calibration, clip at 1.0, Adam, same thread count.

    /usr/bin/python3 tests/reference/bench_step.py [--json]
"""
import json
import os
import sys
import time

import torch


def measure(name, d_in, d_sae, batch, reps, target_l0):
    torch.manual_seed(0)
    W_dec = torch.rand(d_sae, d_in)
    W_dec = W_dec / W_dec.norm(dim=1, keepdim=True) * 0.1
    W_enc = W_dec.T.clone().contiguous().requires_grad_(True)
    W_dec = W_dec.requires_grad_(True)
    b_enc = torch.zeros(d_sae, requires_grad=True)
    b_dec = torch.zeros(d_in, requires_grad=True)
    x = torch.randn(batch, d_in)
    with torch.no_grad():
        rows = batch  # the whole batch: L0 varies a lot from row to row
        pre = (x[:rows] @ W_enc).flatten()
        keep = max(1, int(target_l0 * rows))
        b_enc.fill_(-pre.topk(keep).values.min().item())
    params = [W_enc, b_enc, W_dec, b_dec]
    opt = torch.optim.Adam(params, lr=5e-5, betas=(0.9, 0.999))
    times, l0 = [], 0.0
    for i in range(reps + 1):
        start = time.perf_counter()
        f = torch.relu(x @ W_enc + b_enc)
        out = f @ W_dec + b_dec
        mse = (out - x).pow(2).sum(-1).mean()
        l1 = (5.0 * (f * W_dec.norm(dim=1)).norm(p=1, dim=-1)).mean()
        loss = mse + l1
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        elapsed = time.perf_counter() - start
        if i == 0:
            l0 = (f > 0).float().sum(-1).mean().item()
        else:
            times.append(elapsed)
    times.sort()
    step = times[len(times) // 2]
    return {"name": name, "d_in": d_in, "d_sae": d_sae, "batch": batch, "step_seconds": step,
            "tokens_per_s": batch / step, "l0": l0}


def main():
    threads = os.cpu_count() or 1
    torch.set_num_threads(threads)
    results = [measure("small", 64, 512, 1024, 20, 16), measure("notebook", 512, 32768, 4096, 3, 64)]
    if "--json" in sys.argv:
        print(json.dumps({"threads": threads, "torch": torch.__version__, "shapes": results}, indent=2))
        return
    print(f"PyTorch eager {torch.__version__}, {threads} threads")
    for r in results:
        print(f"{r['name']:<9} step {r['step_seconds'] * 1e3:9.2f} ms  {r['tokens_per_s']:10.0f} tokens/s  L0 {r['l0']:.1f}")


if __name__ == "__main__":
    main()
