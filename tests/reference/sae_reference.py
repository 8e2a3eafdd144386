#!/usr/bin/python3
"""Reference SparseAutoencoder of SAELens 1.5 in plain torch, and fixtures for the C++ Sae.

What it encodes (written from docs/saelens-semantics.md section 2, not from the C++):
  * initialize_weights, draw by draw from torch's default generator: kaiming W_dec; then the
    first of orthogonal_(W_dec.T).T / heuristic (torch.rand rows scaled to norm 0.1) / unit-norm
    rows; a kaiming W_enc that is always drawn and then either replaced by W_dec.T or by a
    second kaiming draw (SAELens 1.5 draws W_enc twice); unit-norm rows again if
    normalize_sae_decoder. The C++ Sae must reproduce these bit for bit under the same seed
    (LibTorch and PyTorch 1.13 share the CPU generator).
  * forward: encode (b_dec subtracted if apply_b_dec_to_input, noise, relu / tanh-relu),
    decode with scaling_factor, per-item MSE (optionally "dense_batch" normalised), the
    Lp-norm sparsity (optionally scaled by decoder row norms, gradient kept), l1_loss, ghost
    grads, the total loss, and the gradients of W_enc, b_enc, W_dec, b_dec.
  * compute_geometric_median (Weiszfeld, start at the mean, maxiter 100, eps 1e-6).
  Fixture sizes: d_in 16, d_sae 64, batch 32. Tensors are {"shape", "data"} with float32
  values stored as the Python float of the float32 value (round-trips exactly).

Regenerate (needs Debian's python3-torch 1.13):
    /usr/bin/python3 tests/reference/sae_reference.py
writes tests/fixtures/sae/{init,forward,geometric_median}.json.
"""

import json
import os

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
OUT_DIR = os.path.join(HERE, "..", "fixtures", "sae")
D_IN, D_SAE, BATCH = 16, 64, 32


def tensor_json(t):
    t = t.detach()
    return {"shape": list(t.shape), "data": [float(v) for v in t.reshape(-1).tolist()]}


def tensor_from_json(j, dtype=torch.float32):
    return torch.tensor(j["data"], dtype=dtype).reshape(j["shape"])


class RefSae:
    """SAELens 1.5 SparseAutoencoder semantics, self-contained."""

    def __init__(self, d_in, d_sae, normalize_sae_decoder=True, decoder_orthogonal_init=False,
                 decoder_heuristic_init=False, init_encoder_as_decoder_transpose=False,
                 apply_b_dec_to_input=True, activation_fn="relu", noise_scale=0.0, lp_norm=1.0,
                 scale_sparsity_penalty_by_decoder_norm=False, mse_loss_normalization=None,
                 use_ghost_grads=False, dtype=torch.float32):
        self.d_in, self.d_sae = d_in, d_sae
        self.normalize_sae_decoder = normalize_sae_decoder
        self.apply_b_dec_to_input = apply_b_dec_to_input
        self.activation_fn = activation_fn
        self.noise_scale = noise_scale
        self.lp_norm = lp_norm
        self.scale_sparsity_penalty_by_decoder_norm = scale_sparsity_penalty_by_decoder_norm
        self.mse_loss_normalization = mse_loss_normalization
        self.use_ghost_grads = use_ghost_grads
        self.training = True

        with torch.no_grad():
            w_dec = torch.nn.init.kaiming_uniform_(torch.empty(d_sae, d_in, dtype=dtype))
            if decoder_orthogonal_init:
                w_dec = torch.nn.init.orthogonal_(w_dec.T).T
            elif decoder_heuristic_init:
                w_dec = torch.rand(d_sae, d_in, dtype=dtype)
                w_dec /= torch.norm(w_dec, dim=1, keepdim=True)
                w_dec *= 0.1
            elif normalize_sae_decoder:
                w_dec /= torch.norm(w_dec, dim=1, keepdim=True)
            w_enc = torch.nn.init.kaiming_uniform_(torch.empty(d_in, d_sae, dtype=dtype))
            if init_encoder_as_decoder_transpose:
                w_enc = w_dec.T.clone()
            else:
                w_enc = torch.nn.init.kaiming_uniform_(torch.empty(d_in, d_sae, dtype=dtype))
            if normalize_sae_decoder:
                w_dec /= torch.norm(w_dec, dim=1, keepdim=True)

        # Registration order of the SAELens module (what sae.parameters() yields).
        self.b_enc = torch.zeros(d_sae, dtype=dtype).requires_grad_(True)
        self.W_dec = w_dec.contiguous().clone().requires_grad_(True)
        self.W_enc = w_enc.contiguous().clone().requires_grad_(True)
        self.b_dec = torch.zeros(d_in, dtype=dtype).requires_grad_(True)
        self.scaling_factor = torch.ones(d_sae, dtype=dtype)  # requires_grad=False in training

    def parameters(self):
        return [self.b_enc, self.W_dec, self.W_enc, self.b_dec]

    def load(self, params):
        with torch.no_grad():
            for name in ["W_enc", "b_enc", "W_dec", "b_dec"]:
                getattr(self, name).copy_(params[name])

    def _per_item_mse(self, preds, target):
        mse = (preds - target) ** 2
        if self.mse_loss_normalization == "dense_batch":
            centered = target - target.mean(dim=0, keepdim=True)
            mse = mse / (centered.norm(dim=-1, keepdim=True) + 1e-6)
        return mse

    def forward(self, x, l1_coefficient, dead_mask=None):
        sae_in = x - self.b_dec if self.apply_b_dec_to_input else x
        hidden_pre = sae_in @ self.W_enc + self.b_enc
        pre_act = hidden_pre
        if self.noise_scale > 0:
            pre_act = hidden_pre + torch.randn_like(hidden_pre) * self.noise_scale
        feature_acts = torch.relu(pre_act)
        if self.activation_fn == "tanh-relu":
            feature_acts = torch.tanh(feature_acts)
        sae_out = (feature_acts * self.scaling_factor) @ self.W_dec + self.b_dec

        per_item_mse = self._per_item_mse(sae_out, x)
        mse_loss = per_item_mse.sum(dim=-1).mean()

        if self.scale_sparsity_penalty_by_decoder_norm:
            per_token = (feature_acts * self.W_dec.norm(dim=1)).norm(p=self.lp_norm, dim=-1)
        else:
            per_token = feature_acts.norm(p=self.lp_norm, dim=-1)
        sparsity = per_token.mean()
        l1_loss = (l1_coefficient * per_token).mean()

        ghost = torch.tensor(0.0, dtype=x.dtype)
        if (self.use_ghost_grads and self.training and dead_mask is not None
                and dead_mask.sum() > 0):
            residual = x - sae_out
            ghost_out = torch.exp(hidden_pre[:, dead_mask]) @ self.W_dec[dead_mask, :]
            scale = residual.norm(dim=-1) / (1e-6 + ghost_out.norm(dim=-1) * 2)
            ghost_out = ghost_out * scale[:, None].detach()
            ghost_mse = self._per_item_mse(ghost_out, residual.detach())
            ghost = ((per_item_mse / (ghost_mse + 1e-6)).detach() * ghost_mse).mean()

        loss = mse_loss + l1_loss + ghost
        return {
            "sae_out": sae_out,
            "feature_acts": feature_acts,
            "hidden_pre": hidden_pre,
            "mse_loss": mse_loss,
            "sparsity": sparsity,
            "l1_loss": l1_loss,
            "ghost_grad_loss": ghost,
            "loss": loss,
        }


def geometric_median(points, maxiter=100, eps=1e-6, ftol=1e-20):
    """Weiszfeld from the mean; weights 1 / max(eps, distance); stop when the objective
    improves by <= ftol * objective."""
    weights = torch.ones(points.shape[0])  # float32 whatever the points' dtype, as SAELens

    def average(w):
        w = w / w.sum()
        return (points * w.view(-1, 1)).sum(dim=0)

    def objective(m):
        return (torch.linalg.norm(points - m.view(1, -1), dim=1) * weights).sum()

    new_weights = weights
    median = average(weights)
    value = objective(median)
    iterations = 0
    for _ in range(maxiter):
        previous = value
        distances = torch.linalg.norm(points - median.view(1, -1), dim=1)
        new_weights = weights / torch.clamp(distances, min=eps)
        median = average(new_weights)
        value = objective(median)
        iterations += 1
        if abs(previous - value) <= ftol * value:
            break
    return average(new_weights), iterations


INIT_CASES = {
    "default": dict(),
    "orthogonal": dict(decoder_orthogonal_init=True),
    "heuristic": dict(normalize_sae_decoder=False, decoder_heuristic_init=True),
    "heuristic_transpose": dict(normalize_sae_decoder=False, decoder_heuristic_init=True,
                                init_encoder_as_decoder_transpose=True),
    "transpose": dict(init_encoder_as_decoder_transpose=True),
    "normalize_off": dict(normalize_sae_decoder=False),
}


def init_fixture():
    cases = []
    for name, options in INIT_CASES.items():
        torch.manual_seed(42)
        sae = RefSae(D_IN, D_SAE, **options)
        # One draw after the init shows how far the generator advanced.
        after = torch.rand(4)
        cases.append({"name": name, "seed": 42, "options": options,
                      "W_enc": tensor_json(sae.W_enc), "W_dec": tensor_json(sae.W_dec),
                      "rand_after_init": tensor_json(after)})
    return {"d_in": D_IN, "d_sae": D_SAE, "cases": cases}


def base_parameters(seed):
    """A trained-looking SAE: kaiming weights (rows not unit), non-zero biases."""
    torch.manual_seed(seed)
    sae = RefSae(D_IN, D_SAE, normalize_sae_decoder=False)
    with torch.no_grad():
        b_enc = torch.randn(D_SAE) * 0.1
        b_dec = torch.randn(D_IN) * 0.1
    return {"W_enc": sae.W_enc.detach().clone(), "b_enc": b_enc,
            "W_dec": sae.W_dec.detach().clone(), "b_dec": b_dec}


FORWARD_CASES = [
    # name, options, training, use dead mask, noise seed, store activations
    ("default", dict(), True, False, None, True),
    ("no_b_dec_in_input", dict(apply_b_dec_to_input=False), True, False, None, True),
    ("dense_batch", dict(mse_loss_normalization="dense_batch"), True, False, None, False),
    ("lp2", dict(lp_norm=2.0), True, False, None, False),
    ("decoder_norm_lp1", dict(normalize_sae_decoder=False,
                              scale_sparsity_penalty_by_decoder_norm=True), True, False, None,
     False),
    ("decoder_norm_lp2", dict(normalize_sae_decoder=False, lp_norm=2.0,
                              scale_sparsity_penalty_by_decoder_norm=True), True, False, None,
     False),
    ("tanh_relu", dict(activation_fn="tanh-relu"), True, False, None, True),
    ("ghost", dict(use_ghost_grads=True), True, True, None, False),
    ("ghost_dense_batch", dict(use_ghost_grads=True, mse_loss_normalization="dense_batch"), True,
     True, None, False),
    ("noise", dict(noise_scale=0.1), True, False, 1234, True),
]


def forward_fixture():
    params = base_parameters(7)
    torch.manual_seed(8)
    x = torch.randn(BATCH, D_IN) + 0.3
    dead_mask = torch.zeros(D_SAE, dtype=torch.bool)
    dead_mask[::3] = True
    l1_coefficient = 0.05
    cases = []
    for name, options, training, use_mask, noise_seed, store_acts in FORWARD_CASES:
        sae = RefSae(D_IN, D_SAE, **options)  # its own init is overwritten below
        sae.load(params)
        sae.training = training
        if noise_seed is not None:
            torch.manual_seed(noise_seed)
        out = sae.forward(x, l1_coefficient, dead_mask if use_mask else None)
        out["loss"].backward()
        case = {"name": name, "options": options, "training": training,
                "use_dead_mask": use_mask, "noise_seed": noise_seed}
        for key in ["mse_loss", "sparsity", "l1_loss", "ghost_grad_loss", "loss"]:
            case[key] = float(out[key].item())
        if store_acts:
            case["sae_out"] = tensor_json(out["sae_out"])
            case["feature_acts"] = tensor_json(out["feature_acts"])
        if name == "default":
            case["hidden_pre"] = tensor_json(out["hidden_pre"])
        case["grads"] = {"W_enc": tensor_json(sae.W_enc.grad), "b_enc": tensor_json(sae.b_enc.grad),
                         "W_dec": tensor_json(sae.W_dec.grad), "b_dec": tensor_json(sae.b_dec.grad)}
        cases.append(case)
    return {"params": {k: tensor_json(v) for k, v in params.items()}, "x": tensor_json(x),
            "dead_mask": [bool(v) for v in dead_mask.tolist()], "l1_coefficient": l1_coefficient,
            "cases": cases}


def geometric_median_fixture():
    torch.manual_seed(11)
    points = torch.randn(128, D_IN) * 2 + 1
    points[:6] *= 25  # outliers pull the mean, not the median
    median, iterations = geometric_median(points)
    # The same points in float64 take many more iterations before the objective stalls.
    median64, iterations64 = geometric_median(points.double())
    return {"points": tensor_json(points), "median": tensor_json(median), "mean":
            tensor_json(points.mean(dim=0)), "iterations": iterations,
            "median_float64": tensor_json(median64), "iterations_float64": iterations64}


def dump(name, payload):
    os.makedirs(OUT_DIR, exist_ok=True)
    with open(os.path.join(OUT_DIR, name), "w") as f:
        json.dump(payload, f, separators=(",", ":"))
        f.write("\n")


def main():
    torch.set_num_threads(1)
    dump("init.json", init_fixture())
    dump("forward.json", forward_fixture())
    dump("geometric_median.json", geometric_median_fixture())


if __name__ == "__main__":
    main()
