#!/usr/bin/python3
"""Independent PyTorch implementation of TransformerLens's HookedTransformer forward pass (v2,
"no processing" weights) for the gelu-1l family, written from TransformerLens's definitions
(components/layer_norm.py, layer_norm_pre.py, abstract_attention.py, mlps/mlp.py, embed.py,
pos_embed.py, unembed.py, utils.lm_cross_entropy_loss) with einsum, not from the C++ code.

Run:  /usr/bin/python3 tests/reference/model_reference.py
Writes tests/fixtures/model/<case>/ (config.json + weights as torch.save .pth or safetensors) and
tests/fixtures/model/<case>.golden.safetensors: the token batch ("tokens"), the value of every
hook point, "logits", "loss", "loss_zero_ablation" (blocks.0.hook_mlp_out replaced by zeros),
"loss_splice" (blocks.0.hook_mlp_out replaced by a small SAE's reconstruction, parameters
"sae.W_enc", "sae.b_enc", "sae.W_dec", "sae.b_dec"), and run_evals's "l2_norm", "l2_ratio",
"l2_norm_in" of that SAE, for tests/model/tst_hooked_transformer.cpp and
tests/model/tst_language_model_source.cpp.
"""
import json
import math
import os
import shutil
import sys
from collections import OrderedDict

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import safetensors_reference as st  # noqa: E402

FIXTURES = os.path.join(HERE, "..", "fixtures", "model")

D_MODEL, N_HEADS, D_HEAD, D_MLP, D_VOCAB, N_CTX = 16, 2, 8, 32, 40, 12
BATCH, POS = 2, 6
DTYPE_NAMES = {torch.float32: "F32", torch.float16: "F16", torch.int64: "I64"}


def layer_norm(x, w, b, eps, prefix, hooks):
    """TL LayerNorm (w, b given) / LayerNormPre (w None)."""
    x = x - x.mean(-1, keepdim=True)
    scale = hooks(prefix + "hook_scale", (x.pow(2).mean(-1, keepdim=True) + eps).sqrt())
    x = x / scale
    return hooks(prefix + "hook_normalized", x * w + b if w is not None else x)


def act(name, x):
    if name == "gelu":
        return torch.nn.functional.gelu(x)
    if name == "gelu_new":
        return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * torch.pow(x, 3.0))))
    if name == "relu":
        return torch.relu(x)
    if name == "solu_ln":
        return x * torch.softmax(x, dim=-1)
    raise ValueError(name)


def forward(cfg, sd, tokens, hooks, ignore=-math.inf):
    """Logits [B, P, V]; hooks(name, value) -> value is called at every hook point."""
    norm = cfg["normalization_type"]
    p_ = lambda k: sd[k].float()  # noqa: E731
    B, P = tokens.shape
    embed = hooks("hook_embed", p_("embed.W_E")[tokens])
    pos = hooks("hook_pos_embed", p_("pos_embed.W_pos")[:P].unsqueeze(0).repeat(B, 1, 1))
    resid = embed + pos
    for l in range(cfg["n_layers"]):
        b = f"blocks.{l}."
        resid_pre = hooks(b + "hook_resid_pre", resid)
        if norm:
            w1 = p_(b + "ln1.w") if norm == "LN" else None
            b1 = p_(b + "ln1.b") if norm == "LN" else None
            x = layer_norm(resid_pre, w1, b1, cfg["eps"], b + "ln1.", hooks)
        else:
            x = resid_pre
        q = hooks(b + "attn.hook_q", torch.einsum("bpd,hde->bphe", x, p_(b + "attn.W_Q")) + p_(b + "attn.b_Q"))
        k = hooks(b + "attn.hook_k", torch.einsum("bpd,hde->bphe", x, p_(b + "attn.W_K")) + p_(b + "attn.b_K"))
        v = hooks(b + "attn.hook_v", torch.einsum("bpd,hde->bphe", x, p_(b + "attn.W_V")) + p_(b + "attn.b_V"))
        scores = torch.einsum("bqhe,bkhe->bhqk", q, k) / math.sqrt(cfg["d_head"])
        allowed = torch.ones(P, P).tril().bool()
        scores = torch.where(allowed, scores, torch.tensor(ignore))
        scores = hooks(b + "attn.hook_attn_scores", scores)
        pattern = torch.softmax(scores, dim=-1)
        pattern = torch.where(torch.isnan(pattern), torch.zeros_like(pattern), pattern)
        pattern = hooks(b + "attn.hook_pattern", pattern)
        z = hooks(b + "attn.hook_z", torch.einsum("bhqk,bkhe->bqhe", pattern, v))
        attn_out = torch.einsum("bqhe,hed->bqd", z, p_(b + "attn.W_O")) + p_(b + "attn.b_O")
        attn_out = hooks(b + "hook_attn_out", attn_out)
        if cfg["attn_only"]:
            resid = hooks(b + "hook_resid_post", resid_pre + attn_out)
            continue
        resid_mid = hooks(b + "hook_resid_mid", resid_pre + attn_out)
        if norm:
            w2 = p_(b + "ln2.w") if norm == "LN" else None
            b2 = p_(b + "ln2.b") if norm == "LN" else None
            x = layer_norm(resid_mid, w2, b2, cfg["eps"], b + "ln2.", hooks)
        else:
            x = resid_mid
        pre = hooks(b + "mlp.hook_pre", torch.einsum("bpd,dm->bpm", x, p_(b + "mlp.W_in")) + p_(b + "mlp.b_in"))
        if cfg["act_fn"] == "solu_ln":
            mid = hooks(b + "mlp.hook_mid", act("solu_ln", pre))
            wm = p_(b + "mlp.ln.w") if norm == "LN" else None
            bm = p_(b + "mlp.ln.b") if norm == "LN" else None
            post = hooks(b + "mlp.hook_post", layer_norm(mid, wm, bm, cfg["eps"], b + "mlp.ln.", hooks))
        else:
            post = hooks(b + "mlp.hook_post", act(cfg["act_fn"], pre))
        mlp_out = hooks(b + "hook_mlp_out", torch.einsum("bpm,md->bpd", post, p_(b + "mlp.W_out")) + p_(b + "mlp.b_out"))
        resid = hooks(b + "hook_resid_post", resid_mid + mlp_out)
    if norm:
        wf = p_("ln_final.w") if norm == "LN" else None
        bf = p_("ln_final.b") if norm == "LN" else None
        resid = layer_norm(resid, wf, bf, cfg["eps"], "ln_final.", hooks)
    b_U = sd["unembed.b_U"].float() if "unembed.b_U" in sd else torch.zeros(cfg["d_vocab"])
    return torch.einsum("bpd,dv->bpv", resid, p_("unembed.W_U")) + b_U


def lm_loss(logits, tokens):
    log_probs = logits.log_softmax(dim=-1)
    predicted = log_probs[:, :-1].gather(dim=-1, index=tokens[:, 1:, None])[..., 0]
    return -predicted.mean()


def random_state_dict(cfg, gen):
    d, h, e, m, V, C = cfg["d_model"], cfg["n_heads"], cfg["d_head"], cfg["d_mlp"], cfg["d_vocab"], cfg["n_ctx"]
    norm = cfg["normalization_type"]
    r = lambda *s: torch.randn(*s, generator=gen) * 0.3  # noqa: E731
    sd = OrderedDict()
    sd["embed.W_E"] = r(V, d)
    sd["pos_embed.W_pos"] = r(C, d)
    for l in range(cfg["n_layers"]):
        b = f"blocks.{l}."
        if norm == "LN":
            sd[b + "ln1.w"] = 1 + r(d)
            sd[b + "ln1.b"] = r(d)
            if not cfg["attn_only"]:
                sd[b + "ln2.w"] = 1 + r(d)
                sd[b + "ln2.b"] = r(d)
        for w in ("W_Q", "W_K", "W_V"):
            sd[b + "attn." + w] = r(h, d, e)
        sd[b + "attn.W_O"] = r(h, e, d)
        for w in ("b_Q", "b_K", "b_V"):
            sd[b + "attn." + w] = r(h, e)
        sd[b + "attn.b_O"] = r(d)
        if not cfg["attn_only"]:
            sd[b + "mlp.W_in"] = r(d, m)
            sd[b + "mlp.b_in"] = r(m)
            sd[b + "mlp.W_out"] = r(m, d)
            sd[b + "mlp.b_out"] = r(d)
            if cfg["act_fn"] == "solu_ln" and norm == "LN":
                sd[b + "mlp.ln.w"] = 1 + r(m)
                sd[b + "mlp.ln.b"] = r(m)
    if norm == "LN":
        sd["ln_final.w"] = 1 + r(d)
        sd["ln_final.b"] = r(d)
    sd["unembed.W_U"] = r(d, V)
    sd["unembed.b_U"] = r(V)
    return sd


def write_safetensors(path, tensors):
    entries = []
    for name, t in tensors.items():
        t = t.contiguous()
        raw = t.numpy().tobytes() if t.dtype != torch.bool else t.to(torch.uint8).numpy().tobytes()
        entries.append((name, DTYPE_NAMES[t.dtype], list(t.shape), raw))
    st.write_file(path, entries)


# name, config overrides, weights format, Neel-style checkpoint (mask/IGNORE buffers, no b_U,
# Neel's config keys), storage dtype
CASES = [
    ("gelu_1l_pth", dict(n_layers=1, act_fn="gelu", normalization_type="LN"), "pth", True, torch.float32),
    ("gelu_1l_safetensors", dict(n_layers=1, act_fn="gelu", normalization_type="LN"), "safetensors", False, torch.float32),
    ("gelu_new_2l", dict(n_layers=2, act_fn="gelu_new", normalization_type="LN"), "pth", False, torch.float16),
    ("relu_lnpre_1l", dict(n_layers=1, act_fn="relu", normalization_type="LNPre"), "safetensors", False, torch.float32),
    ("solu_ln_1l", dict(n_layers=1, act_fn="solu_ln", normalization_type="LN"), "pth", True, torch.float32),
    ("gelu_nonorm_1l", dict(n_layers=1, act_fn="gelu", normalization_type=None), "safetensors", False, torch.float32),
    ("attn_only_2l", dict(n_layers=2, act_fn=None, normalization_type="LN", attn_only=True), "pth", False, torch.float32),
]


def main():
    torch.set_num_threads(1)
    gen = torch.Generator().manual_seed(1234)
    tokens = torch.randint(0, D_VOCAB, (BATCH, POS), generator=gen)
    sae_gen = torch.Generator().manual_seed(99)
    sae = OrderedDict(
        W_enc=torch.randn(D_MODEL, 24, generator=sae_gen) * 0.2,
        b_enc=torch.randn(24, generator=sae_gen) * 0.1,
        W_dec=torch.randn(24, D_MODEL, generator=sae_gen) * 0.2,
        b_dec=torch.randn(D_MODEL, generator=sae_gen) * 0.1,
    )
    for name, overrides, fmt, neel, dtype in CASES:  # noqa: B007
        cfg = dict(n_layers=1, d_model=D_MODEL, n_heads=N_HEADS, d_head=D_HEAD, d_mlp=D_MLP,
                   d_vocab=D_VOCAB, n_ctx=N_CTX, eps=1e-5, attn_only=False)
        cfg.update(overrides)
        seed = 7 + CASES.index((name, overrides, fmt, neel, dtype))
        sd = random_state_dict(cfg, torch.Generator().manual_seed(seed))
        sd = OrderedDict((k, v.to(dtype)) for k, v in sd.items())
        folder = os.path.join(FIXTURES, name)
        shutil.rmtree(folder, ignore_errors=True)
        os.makedirs(folder)
        ignore = -math.inf
        if neel:
            # Neel's training code (solu/transformer.py): mask and IGNORE buffers, no unembed bias;
            # config.json with its own key names and training settings.
            del sd["unembed.b_U"]
            saved = OrderedDict()
            for k, v in sd.items():
                saved[k] = v
                if k.endswith("attn.b_O"):
                    saved[k[: -len("b_O")] + "mask"] = torch.tril(torch.ones(N_CTX, N_CTX)).bool()
                    saved[k[: -len("b_O")] + "IGNORE"] = torch.tensor(-1e5)
            ignore = -1e5
            config = dict(cfg)
            config["normalization"] = config.pop("normalization_type")
            config.update(lr=1e-3, batch_size=32, shortformer_pos=False, tokenizer_name="NeelNanda/gpt-neox-tokenizer-digits", seed=1)
        else:
            saved = sd
            config = dict(cfg)
            config["positional_embedding_type"] = "standard"
        with open(os.path.join(folder, "config.json"), "w") as f:
            json.dump(config, f, indent=2)
        if fmt == "pth":
            torch.save(saved, os.path.join(folder, "model_final.pth"))
        else:
            write_safetensors(os.path.join(folder, "model.safetensors"), saved)

        goldens = OrderedDict()

        def record(hook_name, value):
            goldens[hook_name] = value.detach().clone()
            return value

        logits = forward(cfg, sd, tokens, record, ignore)
        goldens["tokens"] = tokens
        goldens["logits"] = logits
        goldens["loss"] = lm_loss(logits, tokens).reshape(1)
        if not cfg["attn_only"]:
            def zero(hook_name, value):
                return torch.zeros_like(value) if hook_name == "blocks.0.hook_mlp_out" else value

            def splice(hook_name, value):
                if hook_name != "blocks.0.hook_mlp_out":
                    return value
                h = torch.relu((value - sae["b_dec"]) @ sae["W_enc"] + sae["b_enc"])
                return h @ sae["W_dec"] + sae["b_dec"]

            goldens["loss_zero_ablation"] = lm_loss(forward(cfg, sd, tokens, zero, ignore), tokens).reshape(1)
            goldens["loss_splice"] = lm_loss(forward(cfg, sd, tokens, splice, ignore), tokens).reshape(1)
            for k, v in sae.items():
                goldens["sae." + k] = v
            # run_evals's L2 metrics of the SAE on this batch's blocks.0.hook_mlp_out.
            x = goldens["blocks.0.hook_mlp_out"]
            out = splice("blocks.0.hook_mlp_out", x)
            norm_in, norm_out = torch.norm(x, dim=-1), torch.norm(out, dim=-1)
            div = norm_in.clone()
            div[torch.abs(div) < 0.0001] = 1
            goldens["l2_norm"] = norm_out.mean().reshape(1)
            goldens["l2_ratio"] = (norm_out / div).mean().reshape(1)
            goldens["l2_norm_in"] = norm_in.mean().reshape(1)
        write_safetensors(os.path.join(FIXTURES, name + ".golden.safetensors"), goldens)
        print(name, "loss", float(goldens["loss"]), "hooks", sum("hook_" in k for k in goldens))


if __name__ == "__main__":
    main()
