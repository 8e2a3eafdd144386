#!/usr/bin/python3
"""Golden values for whole training runs: SAELens 1.5's train_sae_group_on_language_model for
one SAE, re-implemented in plain PyTorch from ../shared/docs/saelens-semantics.md (§2-§5), over
cached activations in SAELens's layout. The C++ Trainer must reproduce the logged metrics,
schedules and final weights (tests/train/tst_trainer_parity.cpp).

Run with Debian's interpreter (it has python3-torch 1.13.1, the same version as libtorch-dev,
so torch.manual_seed gives the C++ side the same random draws):

    /usr/bin/python3 tests/reference/trainer_reference.py

Writes tests/fixtures/trainer/: cached/{0,1,2}.safetensors (activations), pretrained/ (an SAE
to start from), and case_<name>.json (config, per-log-step metrics, final weights).
"""
import json
import math
import os
import struct

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "fixtures", "trainer")

# --------------------------------------------------------------------------- safetensors

def write_safetensors(path, tensors):
    header, offset, blobs = {}, 0, []
    for name, t in tensors.items():
        t = t.detach().contiguous().to(torch.float32)
        data = t.numpy().tobytes()
        header[name] = {"dtype": "F32", "shape": list(t.shape), "data_offsets": [offset, offset + len(data)]}
        offset += len(data)
        blobs.append(data)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * ((8 - len(text) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for b in blobs:
            f.write(b)

# --------------------------------------------------------------------------- schedules

def l1_coefficient(final, warm_up, step):
    if warm_up == 0:
        return final
    return final * (step / warm_up) if step < warm_up else final


def lr_values(cfg, total_steps):
    """Drive real torch schedulers as SAELens's get_lr_scheduler builds them."""
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.Adam([p], lr=cfg["lr"])
    lr, W, D = cfg["lr"], cfg["lr_warm_up_steps"], cfg["lr_decay_steps"]
    lr_end = cfg["lr_end"] if cfg["lr_end"] is not None else lr / 10
    name = cfg["lr_scheduler_name"].lower()
    main_steps = total_steps - W - D
    schedulers, milestones = [], []
    if W > 0:
        schedulers.append(torch.optim.lr_scheduler.LinearLR(opt, start_factor=1 / W, end_factor=1.0, total_iters=W - 1))
        milestones.append(W)
    if name == "constant":
        schedulers.append(torch.optim.lr_scheduler.LambdaLR(opt, lr_lambda=lambda s: 1.0))
    elif name == "cosineannealing":
        schedulers.append(torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=main_steps, eta_min=lr_end))
    elif name == "cosineannealingwarmrestarts":
        schedulers.append(torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(
            opt, T_0=main_steps // cfg["n_restart_cycles"], eta_min=lr_end))
    if D > 0:
        if name == "constant":
            lr_end = lr
        schedulers.append(torch.optim.lr_scheduler.LinearLR(opt, start_factor=lr_end / lr, end_factor=0.0, total_iters=D))
        milestones.append(total_steps - D)
    sched = torch.optim.lr_scheduler.SequentialLR(opt, schedulers=schedulers, milestones=milestones)
    values = []
    for _ in range(total_steps):
        values.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return values

# --------------------------------------------------------------------------- SAE

class Sae:
    def __init__(self, cfg):
        d_in, d_sae = cfg["d_in"], cfg["d_in"] * cfg["expansion_factor"]
        self.cfg = cfg
        W_dec = torch.nn.init.kaiming_uniform_(torch.empty(d_sae, d_in))
        if cfg["decoder_orthogonal_init"]:
            W_dec = torch.nn.init.orthogonal_(W_dec.T).T
        elif cfg["decoder_heuristic_init"]:
            W_dec = torch.rand(d_sae, d_in)
            W_dec = W_dec / W_dec.norm(dim=1, keepdim=True)
            W_dec = W_dec * 0.1
        elif cfg["normalize_sae_decoder"]:
            W_dec = W_dec / W_dec.norm(dim=1, keepdim=True)
        # SAELens draws a kaiming W_enc in any case, then replaces it by W_dec^T or draws again.
        W_enc = torch.nn.init.kaiming_uniform_(torch.empty(d_in, d_sae))
        if cfg["init_encoder_as_decoder_transpose"]:
            W_enc = W_dec.T.clone()
        else:
            W_enc = torch.nn.init.kaiming_uniform_(torch.empty(d_in, d_sae))
        if cfg["normalize_sae_decoder"]:
            W_dec = W_dec / W_dec.norm(dim=1, keepdim=True)
        self.W_enc = W_enc.contiguous().requires_grad_(True)
        self.b_enc = torch.zeros(d_sae, requires_grad=True)
        self.W_dec = W_dec.contiguous().requires_grad_(True)
        self.b_dec = torch.zeros(d_in, requires_grad=True)
        self.scaling_factor = torch.ones(d_sae)

    def params(self):
        return [self.W_enc, self.b_enc, self.W_dec, self.b_dec]

    def forward(self, x, coeff, dead):
        cfg = self.cfg
        sae_in = x - self.b_dec * float(cfg["apply_b_dec_to_input"])
        hidden_pre = sae_in @ self.W_enc + self.b_enc
        f = torch.relu(hidden_pre)
        sae_out = (f * self.scaling_factor) @ self.W_dec + self.b_dec
        per_item = (sae_out - x) ** 2
        if cfg["mse_loss_normalization"] == "dense_batch":
            per_item = per_item / ((x - x.mean(0)).norm(dim=-1, keepdim=True) + 1e-6)
        mse = per_item.sum(-1).mean()
        weighted = f * self.W_dec.norm(dim=1) if cfg["scale_sparsity_penalty_by_decoder_norm"] else f
        per_token = weighted.norm(p=cfg["lp_norm"], dim=-1)
        sparsity = per_token.mean()
        l1 = (coeff * per_token).mean()
        ghost = torch.tensor(0.0)
        if cfg["use_ghost_grads"] and dead.sum() > 0:
            r = x - sae_out
            g = torch.exp(hidden_pre[:, dead]) @ self.W_dec[dead, :]
            g = g * (r.norm(dim=-1) / (1e-6 + g.norm(dim=-1) * 2))[:, None].detach()
            m_g = (g - r.detach()) ** 2
            if cfg["mse_loss_normalization"] == "dense_batch":
                m_g = m_g / ((r.detach() - r.detach().mean(0)).norm(dim=-1, keepdim=True) + 1e-6)
            ghost = ((per_item / (m_g + 1e-6)).detach() * m_g).mean()
        return sae_out, f, mse, sparsity, l1, ghost, mse + l1 + ghost


def geometric_median(points, maxiter=100, eps=1e-6, ftol=1e-20):
    weights = torch.ones(points.shape[0])
    median = points.mean(0)
    objective = (points - median).norm(dim=1).sum()
    for _ in range(maxiter):
        prev = objective
        distances = (points - median).norm(dim=1)
        weights = 1.0 / torch.clamp(distances, min=eps)
        median = (weights[:, None] * points).sum(0) / weights.sum()
        objective = (points - median).norm(dim=1).sum()
        if abs(prev - objective) <= ftol * objective:
            break
    return median

# --------------------------------------------------------------------------- store

class CachedStore:
    def __init__(self, files, cfg):
        self.data = torch.cat(files)
        self.pos = 0
        self.cfg = cfg
        self._storage = None
        self.loader = None

    def get_buffer(self, n):
        rows = n * self.cfg["store_batch_size"] * self.cfg["context_size"]
        out = self.data[self.pos:self.pos + rows]
        assert out.shape[0] == rows, "fixture ran out of rows"
        self.pos += rows
        return out  # cached path: neither shuffled nor normalised

    @property
    def storage_buffer(self):
        if self._storage is None:
            self._storage = self.get_buffer(self.cfg["n_batches_in_buffer"] // 2)
        return self._storage

    def get_data_loader(self):
        N = self.cfg["n_batches_in_buffer"]
        mix = torch.cat([self.get_buffer(N // 2), self.storage_buffer])
        mix = mix[torch.randperm(mix.shape[0])]
        self._storage = mix[: mix.shape[0] // 2]
        return iter(torch.utils.data.DataLoader(mix[mix.shape[0] // 2:], batch_size=self.cfg["train_batch_size"], shuffle=True))

    def next_batch(self):
        if self.loader is None:
            self.loader = self.get_data_loader()
        try:
            return next(self.loader)
        except StopIteration:
            self.loader = self.get_data_loader()
            return next(self.loader)

# --------------------------------------------------------------------------- training loop

def adam_step(params, grads_state, lr, b1, b2, step, eps=1e-8):
    for p, st in zip(params, grads_state):
        g = p.grad
        if g is None:
            continue
        st["m"].mul_(b1).add_(g, alpha=1 - b1)
        st["v"].mul_(b2).addcmul_(g, g, value=1 - b2)
        bc1 = 1 - b1 ** step
        bc2 = 1 - b2 ** step
        denom = (st["v"].sqrt() / math.sqrt(bc2)).add_(eps)
        p.data.addcdiv_(st["m"], denom, value=-lr / bc1)


def train(cfg, files, pretrained=None):
    torch.manual_seed(cfg["seed"])
    sae = Sae(cfg)
    if pretrained is not None:
        with torch.no_grad():
            for name, t in pretrained.items():
                getattr(sae, name).data.copy_(t)
    store = CachedStore(files, cfg)
    B = cfg["train_batch_size"]
    T = cfg["training_tokens"]
    total_steps = T // B
    lrs = lr_values(cfg, total_steps)
    d_sae = sae.W_dec.shape[0]
    act_freq = torch.zeros(d_sae)
    since_fired = torch.zeros(d_sae)
    n_frac = 0
    # b_dec init on the storage buffer (not for a pretrained SAE)
    if pretrained is None:
        with torch.no_grad():
            if cfg["b_dec_init_method"] == "geometric_median":
                sae.b_dec.data = geometric_median(store.storage_buffer)
            elif cfg["b_dec_init_method"] == "mean":
                sae.b_dec.data = store.storage_buffer.mean(0)
    state = [{"m": torch.zeros_like(p), "v": torch.zeros_like(p)} for p in sae.params()]
    logs, step, n_tokens = [], 0, 0
    while n_tokens < T:
        x = store.next_batch()
        n_tokens += B
        record = {}
        if cfg["normalize_sae_decoder"]:
            with torch.no_grad():
                sae.W_dec.data /= sae.W_dec.data.norm(dim=1, keepdim=True)
        if (step + 1) % cfg["feature_sampling_window"] == 0 and n_frac > 0:
            density = act_freq / n_frac
            record["metrics/mean_log10_feature_sparsity"] = torch.log10(density + 1e-10).mean().item()
            record["sparsity/below_1e-5"] = (density < 1e-5).sum().item()
            record["sparsity/below_1e-6"] = (density < 1e-6).sum().item()
            act_freq = torch.zeros(d_sae)
            n_frac = 0
        dead = since_fired > cfg["dead_feature_window"]
        coeff = l1_coefficient(cfg["l1_coefficient"], cfg["l1_warm_up_steps"], step)
        lr = lrs[step]
        sae_out, f, mse, sparsity, l1, ghost, loss = sae.forward(x, coeff, dead)
        with torch.no_grad():
            did_fire = (f > 0).float().sum(-2) > 0
            since_fired += 1
            since_fired[did_fire] = 0
            act_freq += (f.abs() > 0).float().sum(0)
            n_frac += x.shape[0]
        for p in sae.params():
            p.grad = None
        loss.backward()
        torch.nn.utils.clip_grad_norm_(sae.params(), 1.0)
        if cfg["normalize_sae_decoder"]:
            with torch.no_grad():
                par = (sae.W_dec.grad * sae.W_dec.data).sum(-1)
                sae.W_dec.grad -= par[:, None] * sae.W_dec.data
        adam_step(sae.params(), state, lr, cfg["adam_beta1"], cfg["adam_beta2"], step + 1)
        if (step + 1) % cfg["wandb_log_frequency"] == 0:
            with torch.no_grad():
                ev = 1 - (sae_out - x).pow(2).sum(-1) / (x - x.mean(0)).pow(2).sum(-1)
                record.update({
                    "losses/mse_loss": mse.item(),
                    "losses/l1_loss": sparsity.item(),
                    "losses/ghost_grad_loss": ghost.item(),
                    "losses/overall_loss": loss.item(),
                    "metrics/explained_variance": ev.mean().item(),
                    "metrics/explained_variance_std": ev.std().item(),
                    "metrics/l0": (f > 0).float().sum(-1).mean().item(),
                    "sparsity/mean_passes_since_fired": since_fired.mean().item(),
                    "sparsity/dead_features": dead.sum().item(),
                    "details/current_learning_rate": lr,
                    "details/current_l1_coefficient": coeff,
                    "details/n_training_tokens": n_tokens,
                })
        if record:
            record["step"] = step
            logs.append(record)
        step += 1
    if cfg["normalize_sae_decoder"]:
        with torch.no_grad():
            sae.W_dec.data /= sae.W_dec.data.norm(dim=1, keepdim=True)
    final = {name: getattr(sae, name).detach().flatten().tolist() for name in ["W_enc", "b_enc", "W_dec", "b_dec"]}
    final["log10_sparsity"] = torch.log10(act_freq / max(n_frac, 1) + 1e-10).tolist()
    return logs, final, lrs


BASE = {
    "use_cached_activations": True, "cached_activations_path": "cached", "model_name": "",
    "d_in": 16, "expansion_factor": 4, "context_size": 8, "store_batch_size": 4,
    "n_batches_in_buffer": 4, "train_batch_size": 32, "training_tokens": 32 * 40,
    "seed": 1234, "wandb_log_frequency": 5, "feature_sampling_window": 12, "dead_feature_window": 6,
    "lr_end": None, "n_restart_cycles": 1, "dtype": "float32", "device": "cpu", "n_checkpoints": 0,
    "lp_norm": 1.0, "adam_beta1": 0.9, "adam_beta2": 0.999,
}

CASES = {
    # The notebook's April-2024 recipe.
    "april_recipe": dict(BASE, **{
        "apply_b_dec_to_input": False, "b_dec_init_method": "zeros", "normalize_sae_decoder": False,
        "decoder_heuristic_init": True, "init_encoder_as_decoder_transpose": True,
        "decoder_orthogonal_init": False, "scale_sparsity_penalty_by_decoder_norm": True,
        "mse_loss_normalization": None, "use_ghost_grads": False, "l1_coefficient": 0.5,
        "l1_warm_up_steps": 8, "lr": 3e-3, "lr_scheduler_name": "constant",
        "lr_warm_up_steps": 0, "lr_decay_steps": 10,
    }),
    # SAELens's older defaults: unit-norm decoder, geometric-median b_dec, ghost grads, warm-up + cosine.
    "classic_ghost": dict(BASE, **{
        "apply_b_dec_to_input": True, "b_dec_init_method": "geometric_median", "normalize_sae_decoder": True,
        "decoder_heuristic_init": False, "init_encoder_as_decoder_transpose": False,
        "decoder_orthogonal_init": False, "scale_sparsity_penalty_by_decoder_norm": False,
        "mse_loss_normalization": "dense_batch", "use_ghost_grads": True, "l1_coefficient": 0.2,
        "l1_warm_up_steps": 0, "lr": 4e-3, "lr_scheduler_name": "cosineannealing",
        "lr_warm_up_steps": 4, "lr_decay_steps": 6, "adam_beta1": 0.0, "dead_feature_window": 2,
        "lp_norm": 2.0,
    }),
    # Continue from a saved SAE (from_pretrained_path), mean b_dec init is skipped.
    "from_pretrained": dict(BASE, **{
        "apply_b_dec_to_input": False, "b_dec_init_method": "mean", "normalize_sae_decoder": False,
        "decoder_heuristic_init": True, "init_encoder_as_decoder_transpose": True,
        "decoder_orthogonal_init": False, "scale_sparsity_penalty_by_decoder_norm": True,
        "mse_loss_normalization": None, "use_ghost_grads": False, "l1_coefficient": 0.3,
        "l1_warm_up_steps": 0, "lr": 1e-3, "lr_scheduler_name": "constant",
        "lr_warm_up_steps": 2, "lr_decay_steps": 0, "training_tokens": 32 * 15,
        "from_pretrained_path": "pretrained",
    }),
}


def main():
    os.makedirs(os.path.join(OUT, "cached"), exist_ok=True)
    os.makedirs(os.path.join(OUT, "pretrained"), exist_ok=True)
    g = torch.Generator().manual_seed(99)
    # Sparse non-negative mixtures of 24 directions: features fire, some die.
    dirs = torch.randn(24, 16, generator=g)
    files = []
    for i, rows in enumerate([600, 600, 500]):
        coeffs = torch.relu(torch.randn(rows, 24, generator=g) - 1.0)
        acts = coeffs @ dirs + 0.05 * torch.randn(rows, 16, generator=g)
        files.append(acts.float())
        write_safetensors(os.path.join(OUT, "cached", f"{i}.safetensors"), {"activations": acts})
    pre = {
        "W_enc": torch.randn(16, 64, generator=g) * 0.2, "b_enc": torch.randn(64, generator=g) * 0.1 - 0.1,
        "W_dec": torch.randn(64, 16, generator=g) * 0.2, "b_dec": torch.randn(16, generator=g) * 0.1,
    }
    write_safetensors(os.path.join(OUT, "pretrained", "sae_weights.safetensors"), pre)
    for name, cfg in CASES.items():
        logs, final, lrs = train(cfg, files, pre if cfg.get("from_pretrained_path") else None)
        config = {k: v for k, v in cfg.items()}
        with open(os.path.join(OUT, f"case_{name}.json"), "w") as f:
            json.dump({"config": config, "logs": logs, "final": final, "lr": lrs}, f)
        last = [r for r in logs if "losses/mse_loss" in r][-1]
        print(f"{name}: {len(logs)} log records, last mse {last['losses/mse_loss']:.5f} l0 {last['metrics/l0']:.2f}")


if __name__ == "__main__":
    main()
