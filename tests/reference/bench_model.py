#!/usr/bin/python3
"""The forward of `sae-train --benchmark` (ModelBenchmark) in PyTorch eager: a gelu-1l-sized
HookedTransformer with random weights run up to blocks.0.hook_mlp_out (stop_at_layer=1) on
16 x 1024 random tokens under no_grad, written as TransformerLens v2 computes it (LayerNorm with
w/b, simple_attn_linear via F.linear, q @ k / attn_scale, causal mask with -inf, softmax, NaN ->
0, pattern @ v, F.linear for W_O, batch_addmm for the MLP, exact GELU). Same thread count as the
C++ side: all cores unless --threads N.

    /usr/bin/python3 tests/reference/bench_model.py [--json] [--threads N]
"""
import json
import math
import os
import sys
import time

import torch
import torch.nn.functional as F

D_MODEL, N_HEADS, D_HEAD, D_MLP, D_VOCAB, N_CTX = 512, 8, 64, 2048, 48262, 1024
BATCH, CONTEXT, REPS = 16, 1024, 5


def layer_norm(x, w, b, eps=1e-5):
    x = x - x.mean(-1, keepdim=True)
    scale = (x.pow(2).mean(-1, keepdim=True) + eps).sqrt()
    return x / scale * w + b


def attn_linear(x, W, b):
    w = W.permute(0, 2, 1).reshape(N_HEADS * D_HEAD, D_MODEL)  # (head d_head) d_model
    return F.linear(x, w, b.reshape(-1)).reshape(x.shape[0], x.shape[1], N_HEADS, D_HEAD)


def forward_to_mlp_out(p, tokens):
    B, P = tokens.shape
    resid = p["W_E"][tokens] + p["W_pos"][:P].unsqueeze(0).expand(B, P, D_MODEL)
    x = layer_norm(resid, p["ln1_w"], p["ln1_b"])
    q = attn_linear(x, p["W_Q"], p["b_Q"])
    k = attn_linear(x, p["W_K"], p["b_K"])
    v = attn_linear(x, p["W_V"], p["b_V"])
    scores = q.permute(0, 2, 1, 3) @ k.permute(0, 2, 3, 1) / math.sqrt(D_HEAD)
    mask = torch.ones(P, P, dtype=torch.bool).tril()
    scores = torch.where(mask, scores, torch.tensor(-math.inf))
    pattern = torch.softmax(scores, dim=-1)
    pattern = torch.where(torch.isnan(pattern), torch.zeros_like(pattern), pattern)
    z = (pattern @ v.permute(0, 2, 1, 3)).permute(0, 2, 1, 3)
    w_o = p["W_O"].reshape(N_HEADS * D_HEAD, D_MODEL).t()
    attn_out = F.linear(z.reshape(B, P, N_HEADS * D_HEAD), w_o, p["b_O"])
    resid_mid = resid + attn_out
    x = layer_norm(resid_mid, p["ln2_w"], p["ln2_b"])
    pre = torch.addmm(p["b_in"], x.reshape(-1, D_MODEL), p["W_in"]).reshape(B, P, D_MLP)
    post = F.gelu(pre)
    return torch.addmm(p["b_out"], post.reshape(-1, D_MLP), p["W_out"]).reshape(B, P, D_MODEL)


def main():
    threads = os.cpu_count() or 1
    if "--threads" in sys.argv:
        threads = int(sys.argv[sys.argv.index("--threads") + 1])
    torch.set_num_threads(threads)
    gen = torch.Generator().manual_seed(0)
    std = 0.8 / math.sqrt(D_MODEL)
    r = lambda *s: torch.randn(*s, generator=gen) * std  # noqa: E731
    p = dict(W_E=r(D_VOCAB, D_MODEL), W_pos=r(N_CTX, D_MODEL), ln1_w=torch.ones(D_MODEL),
             ln1_b=torch.zeros(D_MODEL), W_Q=r(N_HEADS, D_MODEL, D_HEAD), W_K=r(N_HEADS, D_MODEL, D_HEAD),
             W_V=r(N_HEADS, D_MODEL, D_HEAD), b_Q=torch.zeros(N_HEADS, D_HEAD), b_K=torch.zeros(N_HEADS, D_HEAD),
             b_V=torch.zeros(N_HEADS, D_HEAD), W_O=r(N_HEADS, D_HEAD, D_MODEL), b_O=torch.zeros(D_MODEL),
             ln2_w=torch.ones(D_MODEL), ln2_b=torch.zeros(D_MODEL), W_in=r(D_MODEL, D_MLP),
             b_in=torch.zeros(D_MLP), W_out=r(D_MLP, D_MODEL), b_out=torch.zeros(D_MODEL))
    tokens = torch.randint(0, D_VOCAB, (BATCH, CONTEXT), generator=gen)
    times = []
    with torch.no_grad():
        forward_to_mlp_out(p, tokens)
        for _ in range(REPS):
            start = time.perf_counter()
            forward_to_mlp_out(p, tokens)
            times.append(time.perf_counter() - start)
    seconds = sorted(times)[len(times) // 2]
    result = {"hook": "blocks.0.hook_mlp_out", "batch": BATCH, "context": CONTEXT, "threads": threads,
              "repetitions": REPS, "seconds_per_batch": seconds,
              "activations_per_s": BATCH * CONTEXT / seconds, "torch": torch.__version__}
    if "--json" in sys.argv:
        print(json.dumps(result, indent=2))
    else:
        print(f"PyTorch {torch.__version__} eager, {threads} threads: {seconds:.3f} s per batch, "
              f"{result['activations_per_s']:.0f} activations/s")


if __name__ == "__main__":
    main()
