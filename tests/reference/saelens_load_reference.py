#!/usr/bin/python3
"""Loads an SAE folder (cfg.json, sae_weights.safetensors) the way SAELens 5.x and 6.x do in
SAE.load_from_disk(path), with every check they make, and runs the loaded SAE.

SAELens itself cannot be installed here (no PyPI), so its config path is re-implemented from
its source, read at these commits of github.com/jbloomAus/SAELens:
  * 5.x: sae_lens/sae.py @ 095dec3073a3 (the flat SAEConfig: its fields without a default,
    from_dict's renames and filter, get_activation_fn, encode/decode), and
    sae_lens/toolkit/pretrained_sae_loaders.py @ 00338b607368 (sae_lens_disk_loader,
    get_sae_lens_config_from_disk, read_sae_components_from_disk, handle_config_defaulting).
    load_from_disk(path, device, dtype, converter) exists from 5.9.0 (CHANGELOG, e117ed8):
    converter (config + weights) -> handle_config_defaulting -> SAEConfig.from_dict -> SAE(cfg)
    -> load_state_dict (strict).
  * 6.x: sae_lens/saes/sae.py @ 62dca289e660 (SAEConfig, the dict-like SAEMetadata, from_dict,
    load_from_disk, process_sae_in, fold_activation_norm_scaling_factor) and
    sae_lens/loading/pretrained_sae_loaders.py @ fa11914116503 (handle_config_defaulting with
    its Version(...) < Version("6.0.0-rc.0") test, handle_pre_6_0_config, LLM_METADATA_KEYS,
    read_sae_components_from_disk), sae_lens/constants.py (DTYPE_MAP), sae_lens/util.py
    (filter_valid_dataclass_fields); CHANGELOG v6.0.0 (#499: "metadata", dict-like SAEMetadata,
    tanh-relu removed) to v6.12.1.
Three loaders are run on the folder: SAELens 5.x; 6.x as it reads the file (metadata's
sae_lens_version >= 6.0.0 -> native path); 6.x on the same file without "metadata" (the pre-6
conversion path, which a cfg.json without a 6.x version takes). All three must accept it and
give the same features and outputs.

  /usr/bin/python3 tests/reference/saelens_load_reference.py
checks tests/fixtures/sae/saelens_folded/ (written by tests/sae/tst_sae_folder_saelens.cpp with
SAEWB_WRITE_SAELENS_FIXTURE=1) and writes its forward_reference.json: raw activations x, and
the loaded SAE's feature activations and output on them (the C++ suite compares these with the
unfolded SAE on s * x).

  /usr/bin/python3 tests/reference/saelens_load_reference.py --check FOLDER
checks any folder (e.g. a run's final/) and prints what each loader made of it; exit 1 if one
would fail or the loaders disagree. Needs Debian's python3-torch (1.13); no other package.
"""

import json
import os
import re
import sys

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import safetensors_reference  # noqa: E402  (hand-written safetensors reader, no package needed)

FIXTURE = os.path.normpath(os.path.join(HERE, "..", "fixtures", "sae", "saelens_folded"))

# sae_lens/constants.py (6.x) and sae_lens/config.py (5.x): the same map.
DTYPE_MAP = {
    "float32": torch.float32,
    "float64": torch.float64,
    "float16": torch.float16,
    "bfloat16": torch.bfloat16,
    "torch.float32": torch.float32,
    "torch.float64": torch.float64,
    "torch.float16": torch.float16,
    "torch.bfloat16": torch.bfloat16,
}
SAFETENSORS_DTYPES = {"F32": torch.float32, "F64": torch.float64, "F16": torch.float16,
                      "BF16": torch.bfloat16}

NORMALIZE_6 = ["none", "expected_average_only_in", "constant_norm_rescale", "layer_norm"]

# ---- 5.x: SAEConfig (sae_lens/sae.py): fields without a default, then those with one ----------
SAECONFIG_5_REQUIRED = [
    "architecture", "d_in", "d_sae", "activation_fn_str", "apply_b_dec_to_input",
    "finetuning_scaling_factor", "context_size", "model_name", "hook_name", "hook_layer",
    "hook_head_index", "prepend_bos", "dataset_path", "dataset_trust_remote_code",
    "normalize_activations", "dtype", "device", "sae_lens_training_version",
]
SAECONFIG_5_DEFAULTS = {"activation_fn_kwargs": {}, "neuronpedia_id": None,
                        "model_from_pretrained_kwargs": {}, "seqpos_slice": (None,)}

# ---- 6.x: StandardSAEConfig = SAEConfig's fields (sae_lens/saes/sae.py) ----------------------
SAECONFIG_6_FIELDS = {"d_in": None, "d_sae": None, "dtype": "float32", "device": "cpu",
                      "apply_b_dec_to_input": True, "normalize_activations": "none",
                      "reshape_activations": "none", "metadata": None}
# sae_lens/loading/pretrained_sae_loaders.py
LLM_METADATA_KEYS = {
    "model_name", "hook_name", "model_class_name", "hook_head_index",
    "model_from_pretrained_kwargs", "prepend_bos", "exclude_special_tokens", "neuronpedia_id",
    "context_size", "seqpos_slice", "dataset_path", "sae_lens_version",
    "sae_lens_training_version",
}

# What our cfg.json must carry (mirrored in tests/sae/tst_sae_folder_saelens.cpp): name ->
# (types, nullable). 5.x would default some of these, but we write every one ourselves.
INT, STR, BOOL, DICT = (int,), (str,), (bool,), (dict,)
KEYS_5 = {
    "architecture": (STR, False), "d_in": (INT, False), "d_sae": (INT, False),
    "activation_fn_str": (STR, False), "apply_b_dec_to_input": (BOOL, False),
    "finetuning_scaling_factor": (BOOL, False), "context_size": (INT, False),
    "model_name": (STR, False), "hook_name": (STR, False), "hook_layer": (INT, False),
    "hook_head_index": (INT, True), "prepend_bos": (BOOL, False), "dataset_path": (STR, False),
    "dataset_trust_remote_code": (BOOL, False), "normalize_activations": (STR, False),
    "dtype": (STR, False), "device": (STR, False), "sae_lens_training_version": (STR, True),
    "activation_fn_kwargs": (DICT, False), "model_from_pretrained_kwargs": (DICT, False),
}
KEYS_6 = {
    "architecture": (STR, False), "d_in": (INT, False), "d_sae": (INT, False),
    "dtype": (STR, False), "device": (STR, False), "apply_b_dec_to_input": (BOOL, False),
    "normalize_activations": (STR, False), "reshape_activations": (STR, False),
    "metadata": (DICT, False),
}
KEYS_6_METADATA = {
    "sae_lens_version": (STR, False), "sae_lens_training_version": (STR, False),
    "model_name": (STR, False), "model_class_name": (STR, False), "hook_name": (STR, False),
    "hook_head_index": (INT, True), "context_size": (INT, False), "prepend_bos": (BOOL, False),
    "dataset_path": (STR, False), "model_from_pretrained_kwargs": (DICT, False),
}


class LoadError(Exception):
    pass


# ---- packaging.version.Version, the part SAELens's check needs (PEP 440) ---------------------
_VERSION = re.compile(
    r"^\s*v?(?P<release>\d+(?:\.\d+)*)"
    r"(?:[-_.]?(?P<pre_l>alpha|beta|preview|pre|rc|a|b|c)[-_.]?(?P<pre_n>\d+)?)?"
    r"(?:-(?P<post_n1>\d+)|[-_.]?(?P<post_l>post|rev|r)[-_.]?(?P<post_n2>\d+)?)?"
    r"(?:[-_.]?(?P<dev_l>dev)[-_.]?(?P<dev_n>\d+)?)?"
    r"(?:\+[a-z0-9]+(?:[-_.][a-z0-9]+)*)?\s*$", re.IGNORECASE)


def version_key(text):
    """Sort key of a PEP 440 version; raises LoadError where packaging raises InvalidVersion."""
    m = _VERSION.match(text) if isinstance(text, str) else None
    if not m:
        raise LoadError(f"sae_lens_version {text!r} is not a valid version (InvalidVersion)")
    release = [int(p) for p in m.group("release").split(".")]
    while len(release) > 1 and release[-1] == 0:
        release.pop()
    pre_rank = {"a": 0, "alpha": 0, "b": 1, "beta": 1, "c": 2, "rc": 2, "pre": 2, "preview": 2}
    has_post = m.group("post_n1") is not None or m.group("post_l") is not None
    has_dev = m.group("dev_l") is not None
    if m.group("pre_l"):
        pre = (pre_rank[m.group("pre_l").lower()], int(m.group("pre_n") or 0))
    elif has_dev and not has_post:
        pre = (-1, 0)  # X.devN sorts before X.aN
    else:
        pre = (3, 0)  # a final release sorts after its pre-releases
    post = (1, int(m.group("post_n1") or m.group("post_n2") or 0)) if has_post else (0, 0)
    dev = (0, int(m.group("dev_n") or 0)) if has_dev else (1, 0)
    return (tuple(release), pre, post, dev)


# ---- shared: the disk converter (sae_lens_disk_loader, same in 5.9+ and 6.x) ----------------
def read_safetensors(path):
    raw, _ = safetensors_reference.read_file(path)
    out = {}
    for name, (dtype, shape, data) in raw.items():
        if dtype not in SAFETENSORS_DTYPES:
            raise LoadError(f"{path}: tensor {name} has dtype {dtype}")
        t = torch.frombuffer(bytearray(data), dtype=SAFETENSORS_DTYPES[dtype]) if data else \
            torch.empty(0, dtype=SAFETENSORS_DTYPES[dtype])
        out[name] = t.reshape(shape).clone()
    return out


def sae_lens_disk_loader(path, device="cpu", cfg_overrides=None):
    with open(os.path.join(path, "cfg.json")) as f:
        cfg_dict = json.load(f)  # keeps the file's key order, as SAELens's json.load does
    if device is not None:
        cfg_dict["device"] = device
    if cfg_overrides is not None:
        cfg_dict.update(cfg_overrides)
    return read_sae_components_from_disk(cfg_dict, os.path.join(path, "sae_weights.safetensors"),
                                         device)


def read_sae_components_from_disk(cfg_dict, weight_path, device="cpu"):
    if cfg_dict.get("dtype") not in DTYPE_MAP:
        raise LoadError(f"dtype {cfg_dict.get('dtype')!r} is not in DTYPE_MAP (KeyError)")
    dtype = DTYPE_MAP[cfg_dict["dtype"]]
    state_dict = {k: v.to(dtype=dtype) for k, v in read_safetensors(weight_path).items()}
    if "scaling_factor" in state_dict:
        if torch.allclose(state_dict["scaling_factor"],
                          torch.ones_like(state_dict["scaling_factor"])):
            del state_dict["scaling_factor"]
            cfg_dict["finetuning_scaling_factor"] = False
        else:
            if not cfg_dict["finetuning_scaling_factor"]:
                raise LoadError("Scaling factor is present but finetuning_scaling_factor is False.")
            state_dict["finetuning_scaling_factor"] = state_dict.pop("scaling_factor")
    else:
        cfg_dict["finetuning_scaling_factor"] = False
    return cfg_dict, state_dict


def load_state_dict_strict(params, state_dict, who):
    missing = sorted(set(params) - set(state_dict))
    unexpected = sorted(set(state_dict) - set(params))
    if missing or unexpected:
        raise LoadError(f"{who}: load_state_dict(strict): missing {missing}, unexpected "
                        f"{unexpected}")
    for name, shape in params.items():
        if list(state_dict[name].shape) != list(shape):
            raise LoadError(f"{who}: size mismatch for {name}: {list(state_dict[name].shape)} in "
                            f"the file, {list(shape)} in the model")
    return {name: state_dict[name] for name in params}


def activation_norm_fns(mode, d_in):
    """run_time_activation_norm_fn_in/out (5.x and 6.x); any other mode is the identity (note:
    'expected_average_only_in' too: load_from_disk never applies a factor)."""
    state = {}
    if mode == "constant_norm_rescale":
        def fn_in(x):
            state["c"] = (d_in ** 0.5) / x.norm(dim=-1, keepdim=True)
            return x * state["c"]
        return fn_in, lambda x: x / state["c"]
    if mode == "layer_norm":
        def ln_in(x, eps=1e-5):
            mu = x.mean(dim=-1, keepdim=True)
            x = x - mu
            std = x.std(dim=-1, keepdim=True)
            state["mu"], state["std"] = mu, std
            return x / (std + eps)
        return ln_in, lambda x: x * state["std"] + state["mu"]
    return (lambda x: x), (lambda x: x)


class LoadedSae:
    """What SAE.load_from_disk returns, reduced to what the forward pass uses."""

    def __init__(self, who, cfg, params, activation, apply_b_dec, normalize, d_in, dtype):
        self.who, self.cfg, self.params = who, cfg, params
        self.activation, self.apply_b_dec, self.dtype = activation, apply_b_dec, dtype
        self.norm_in, self.norm_out = activation_norm_fns(normalize, d_in)

    def encode(self, x):
        p = self.params
        sae_in = self.norm_in(x.to(self.dtype)) - p["b_dec"] * self.apply_b_dec
        return self.activation(sae_in @ p["W_enc"] + p["b_enc"])

    def decode(self, f):
        p = self.params
        if "finetuning_scaling_factor" in p:
            f = f * p["finetuning_scaling_factor"]
        return self.norm_out(f @ p["W_dec"] + p["b_dec"])

    def forward(self, x):
        f = self.encode(x)
        return f, self.decode(f)


# ---- SAELens 5.x ----------------------------------------------------------------------------
def handle_config_defaulting_5(cfg_dict):
    cfg_dict.setdefault("prepend_bos", True)
    cfg_dict.setdefault("dataset_trust_remote_code", True)
    cfg_dict.setdefault("apply_b_dec_to_input", True)
    cfg_dict.setdefault("finetuning_scaling_factor", False)
    cfg_dict.setdefault("sae_lens_training_version", None)
    cfg_dict.setdefault("activation_fn_str", cfg_dict.get("activation_fn", "relu"))
    cfg_dict.setdefault("architecture", "standard")
    cfg_dict.setdefault("neuronpedia_id", None)
    if "normalize_activations" in cfg_dict and isinstance(cfg_dict["normalize_activations"], bool):
        cfg_dict["normalize_activations"] = ("none" if not cfg_dict["normalize_activations"]
                                             else "expected_average_only_in")
    cfg_dict.setdefault("normalize_activations", "none")
    cfg_dict.setdefault("device", "cpu")
    return cfg_dict


def saeconfig_from_dict_5(config_dict):
    rename = {"hook_point": "hook_name", "hook_point_head_index": "hook_head_index",
              "hook_point_layer": "hook_layer", "activation_fn": "activation_fn_str"}
    config_dict = {rename.get(k, k): v for k, v in config_dict.items()}  # later key wins
    fields = set(SAECONFIG_5_REQUIRED) | set(SAECONFIG_5_DEFAULTS)
    config_dict = {k: v for k, v in config_dict.items() if k in fields}
    if "seqpos_slice" in config_dict:
        config_dict["seqpos_slice"] = tuple(config_dict["seqpos_slice"])
    missing = [k for k in SAECONFIG_5_REQUIRED if k not in config_dict]
    if missing:
        raise LoadError(f"SAEConfig.__init__() missing required arguments: {missing}")
    return {**SAECONFIG_5_DEFAULTS, **config_dict}


def get_activation_fn_5(name, **kwargs):
    if name == "relu":
        return torch.relu
    if name == "tanh-relu":
        return lambda x: torch.tanh(torch.relu(x))
    if name == "topk":
        raise LoadError("topk is not the architecture we write")
    raise LoadError(f"Unknown activation function: {name}")


def load_saelens_5(path):
    cfg_dict, state_dict = sae_lens_disk_loader(path, "cpu")
    cfg_dict = handle_config_defaulting_5(cfg_dict)
    cfg = saeconfig_from_dict_5(cfg_dict)
    if cfg["architecture"] not in ("standard", "gated", "jumprelu", "topk"):
        raise LoadError(f"Invalid architecture: {cfg['architecture']}")
    if cfg["architecture"] != "standard":
        raise LoadError(f"architecture {cfg['architecture']!r}: only standard is written here")
    dtype = DTYPE_MAP[cfg["dtype"]]
    torch.device(cfg["device"])
    activation = get_activation_fn_5(cfg["activation_fn_str"], **(cfg["activation_fn_kwargs"] or {}))
    if not isinstance(cfg["hook_name"], str):
        raise LoadError("hook_name is not a string (SAE.__init__ calls hook_name.endswith)")
    if cfg["hook_name"].endswith("_z"):
        raise LoadError("hook_z SAEs reshape inputs; not what this check covers")
    d_in, d_sae = cfg["d_in"], cfg["d_sae"]
    params = {"W_enc": [d_in, d_sae], "b_enc": [d_sae], "W_dec": [d_sae, d_in], "b_dec": [d_in]}
    if cfg["finetuning_scaling_factor"]:
        params["finetuning_scaling_factor"] = [d_sae]
    weights = load_state_dict_strict(params, state_dict, "SAELens 5.x")
    return LoadedSae("saelens_5", cfg, weights, activation, cfg["apply_b_dec_to_input"],
                     cfg["normalize_activations"], d_in, dtype)


# ---- SAELens 6.x ----------------------------------------------------------------------------
def handle_config_defaulting_6(cfg_dict):
    sae_lens_version = cfg_dict.get("sae_lens_version")
    if not sae_lens_version and "metadata" in cfg_dict:
        sae_lens_version = cfg_dict["metadata"].get("sae_lens_version")
    if not sae_lens_version or version_key(sae_lens_version) < version_key("6.0.0-rc.0"):
        return handle_pre_6_0_config(cfg_dict), "pre-6 conversion"
    return cfg_dict, "native"


def handle_pre_6_0_config(cfg_dict):
    rename = {"hook_point": "hook_name", "hook_point_head_index": "hook_head_index",
              "activation_fn_str": "activation_fn"}
    new_cfg = {rename.get(k, k): v for k, v in cfg_dict.items()}  # later key wins
    new_cfg.setdefault("prepend_bos", True)
    new_cfg.setdefault("dataset_trust_remote_code", True)
    new_cfg.setdefault("apply_b_dec_to_input", True)
    new_cfg.setdefault("finetuning_scaling_factor", False)
    new_cfg.setdefault("sae_lens_training_version", None)
    new_cfg.setdefault("activation_fn", new_cfg.get("activation_fn", "relu"))
    new_cfg.setdefault("architecture", "standard")
    new_cfg.setdefault("neuronpedia_id", None)
    new_cfg.setdefault("reshape_activations",
                       "hook_z" if "hook_z" in new_cfg.get("hook_name", "") else "none")
    if "normalize_activations" in new_cfg and isinstance(new_cfg["normalize_activations"], bool):
        new_cfg["normalize_activations"] = ("none" if not new_cfg["normalize_activations"]
                                            else "expected_average_only_in")
    if new_cfg.get("normalize_activations") is None:
        new_cfg["normalize_activations"] = "none"
    new_cfg.setdefault("device", "cpu")
    architecture = new_cfg.get("architecture", "standard")
    if architecture != "standard":
        raise LoadError(f"architecture {architecture!r}: only standard is written here")
    sae_cfg_dict = {k: v for k, v in new_cfg.items() if k in SAECONFIG_6_FIELDS}
    sae_cfg_dict["metadata"] = {k: v for k, v in new_cfg.items() if k in LLM_METADATA_KEYS}
    sae_cfg_dict["architecture"] = architecture
    return sae_cfg_dict


def saeconfig_from_dict_6(config_dict):
    if "architecture" not in config_dict:
        raise LoadError("cfg.json has no architecture (SAEConfig.from_dict: KeyError)")
    if config_dict["architecture"] != "standard":
        raise LoadError(f"architecture {config_dict['architecture']!r}: only standard is written")
    filtered = {k: v for k, v in config_dict.items() if k in SAECONFIG_6_FIELDS}
    for required in ("d_in", "d_sae"):
        if required not in filtered:
            raise LoadError(f"StandardSAEConfig.__init__() missing required argument {required}")
    cfg = {k: filtered.get(k, default) for k, default in SAECONFIG_6_FIELDS.items()}
    if cfg["normalize_activations"] not in NORMALIZE_6:
        raise LoadError(f"normalize_activations must be one of {NORMALIZE_6}. Got "
                        f"{cfg['normalize_activations']!r}")
    metadata = config_dict.get("metadata")
    if metadata is not None and not isinstance(metadata, dict):
        raise LoadError("metadata must be an object (SAEMetadata(**metadata))")
    meta = dict(metadata or {})
    # SAEMetadata.__init__: the two versions default to the running SAELens's __version__.
    meta.setdefault("sae_lens_version", "<running version>")
    meta.setdefault("sae_lens_training_version", "<running version>")
    cfg["metadata"] = meta
    return cfg


def load_saelens_6(path, drop_metadata=False):
    overrides = None
    cfg_dict, state_dict = sae_lens_disk_loader(path, "cpu", overrides)
    if drop_metadata:
        cfg_dict.pop("metadata", None)
    cfg_dict, route = handle_config_defaulting_6(cfg_dict)
    cfg = saeconfig_from_dict_6(cfg_dict)
    dtype = DTYPE_MAP.get(cfg["dtype"])
    if dtype is None:
        raise LoadError(f"dtype {cfg['dtype']!r} is not in DTYPE_MAP")
    torch.device(cfg["device"])
    if cfg["reshape_activations"] not in ("none", "hook_z"):
        raise LoadError(f"reshape_activations {cfg['reshape_activations']!r}")
    if cfg["reshape_activations"] == "hook_z":
        raise LoadError("hook_z SAEs reshape inputs; not what this check covers")
    d_in, d_sae = cfg["d_in"], cfg["d_sae"]
    params = {"W_enc": [d_in, d_sae], "b_enc": [d_sae], "W_dec": [d_sae, d_in], "b_dec": [d_in]}
    who = "saelens_6_pre6_conversion" if drop_metadata else "saelens_6"
    weights = load_state_dict_strict(params, state_dict, f"SAELens 6.x ({route})")
    # 6.x's StandardSAE always uses ReLU (tanh-relu was removed in 6.0.0).
    sae = LoadedSae(who, cfg, weights, torch.relu, cfg["apply_b_dec_to_input"],
                    cfg["normalize_activations"], d_in, dtype)
    sae.route = route
    return sae


# ---- the checks -----------------------------------------------------------------------------
def check_keys(obj, keys, where):
    problems = []
    for name, (types, nullable) in keys.items():
        if name not in obj:
            problems.append(f"{where}{name} is missing")
            continue
        value = obj[name]
        if value is None and nullable:
            continue
        ok = isinstance(value, types) and not (types is INT and isinstance(value, bool))
        if not ok:
            problems.append(f"{where}{name} = {value!r}: expected {types[0].__name__}"
                            + (" or null" if nullable else ""))
    return problems


def check_folder(path, x=None):
    """Returns (report dict, problems list, loaded SAEs)."""
    with open(os.path.join(path, "cfg.json")) as f:
        raw = json.load(f)
    problems = check_keys(raw, KEYS_5, "cfg.json: ")
    problems += check_keys(raw, KEYS_6, "cfg.json: ")
    if isinstance(raw.get("metadata"), dict):
        problems += check_keys(raw["metadata"], KEYS_6_METADATA, "cfg.json metadata: ")
    if "sae_lens_version" in raw:
        problems.append("cfg.json: a top-level sae_lens_version shadows metadata.sae_lens_version "
                        "in SAELens 6.x")
    meta_version = (raw.get("metadata") or {}).get("sae_lens_version")
    try:
        if meta_version is not None and version_key(meta_version) < version_key("6.0.0-rc.0"):
            problems.append(f"metadata.sae_lens_version {meta_version!r} < 6.0.0-rc.0: 6.x "
                            "would ignore metadata and convert the flat keys")
    except LoadError as e:
        problems.append(str(e))
    if raw.get("normalize_activations") != "none":
        problems.append(f"normalize_activations is {raw.get('normalize_activations')!r}: "
                        "load_from_disk applies no factor, the weights must take raw activations")
    if raw.get("activation_fn_str", "relu") != "relu":
        problems.append(f"activation_fn_str {raw.get('activation_fn_str')!r}: SAELens 6.x loads "
                        "a standard SAE with ReLU (only 5.x reproduces this SAE)")
    if raw.get("hook_point", raw.get("hook_name")) != raw.get("hook_name"):
        problems.append(f"hook_point {raw.get('hook_point')!r} != hook_name "
                        f"{raw.get('hook_name')!r}: the loaders' renames keep the later key")

    saes = []
    for loader in (load_saelens_5, load_saelens_6, lambda p: load_saelens_6(p, True)):
        try:
            saes.append(loader(path))
        except LoadError as e:
            problems.append(f"load failed: {e}")
    report = {}
    for sae in saes:
        c = sae.cfg
        entry = {"d_in": c["d_in"], "d_sae": c["d_sae"], "dtype": c["dtype"],
                 "apply_b_dec_to_input": c["apply_b_dec_to_input"],
                 "normalize_activations": c["normalize_activations"],
                 "state_dict": sorted(sae.params)}
        if sae.who == "saelens_5":
            entry.update({k: c[k] for k in ("hook_name", "hook_layer", "hook_head_index",
                                             "model_name", "context_size", "prepend_bos",
                                             "dataset_path", "activation_fn_str")})
        else:
            entry["route"] = sae.route
            entry["reshape_activations"] = c["reshape_activations"]
            entry["metadata"] = {k: c["metadata"].get(k) for k in sorted(c["metadata"])}
        report[sae.who] = entry
    # The loaders agree on what they loaded.
    if "saelens_5" in report:
        r5 = report["saelens_5"]
        for who in ("saelens_6", "saelens_6_pre6_conversion"):
            if who not in report:
                continue
            m = report[who]["metadata"]
            for key in ("hook_name", "hook_head_index", "model_name", "context_size",
                        "prepend_bos", "dataset_path"):
                if m.get(key) != r5[key]:
                    problems.append(f"{who}: metadata.{key} = {m.get(key)!r}, 5.x has "
                                    f"{r5[key]!r}")
            for key in ("d_in", "d_sae", "dtype", "apply_b_dec_to_input",
                        "normalize_activations"):
                if report[who][key] != r5[key]:
                    problems.append(f"{who}: {key} = {report[who][key]!r}, 5.x has {r5[key]!r}")
    if "saelens_6" in report and report["saelens_6"]["route"] != "native":
        problems.append("SAELens 6.x took the pre-6 conversion path: metadata is not read")
    outputs = None
    if saes and x is not None:
        outputs = [sae.forward(x) for sae in saes]
        for sae, (f, out) in zip(saes[1:], outputs[1:]):
            if not (torch.equal(f, outputs[0][0]) and torch.equal(out, outputs[0][1])):
                problems.append(f"{sae.who}: forward differs from {saes[0].who}")
    return report, problems, saes, outputs


def tensor_json(t):
    t = t.detach().to(torch.float32)
    return {"shape": list(t.shape), "data": [float(v) for v in t.reshape(-1).tolist()]}


def reference_forward(sae, x):
    """The forward pass as the brief states it, independent of LoadedSae."""
    p = sae.params
    pre = (x - p["b_dec"] * sae.cfg["apply_b_dec_to_input"]) @ p["W_enc"] + p["b_enc"]
    f = torch.relu(pre)
    return f, f @ p["W_dec"] + p["b_dec"]


def main(argv):
    if len(argv) == 3 and argv[1] == "--check":
        with open(os.path.join(argv[2], "cfg.json")) as f:
            d_in = json.load(f).get("d_in")
        torch.manual_seed(0)
        x = torch.randn(8, d_in) if isinstance(d_in, int) else None
        report, problems, _, _ = check_folder(argv[2], x)
        print(json.dumps(report, indent=2))
        for p in problems:
            print("PROBLEM:", p)
        print("OK: SAELens 5.x and 6.x load it and agree" if not problems else
              f"{len(problems)} problem(s)")
        return 1 if problems else 0
    if len(argv) != 1:
        print(__doc__)
        return 2
    with open(os.path.join(FIXTURE, "cfg.json")) as f:
        cfg = json.load(f)
    torch.manual_seed(0)
    x = torch.randn(16, cfg["d_in"]) * 3.0 + 0.5
    report, problems, saes, outputs = check_folder(FIXTURE, x)
    if len(saes) != 3:
        problems.append("not every loader loaded the fixture")
    if problems:
        for p in problems:
            print("PROBLEM:", p)
        return 1
    f, out = outputs[0]
    rf, rout = reference_forward(saes[0], x)
    assert torch.allclose(f, rf, rtol=1e-6, atol=1e-6) and torch.allclose(out, rout, rtol=1e-6,
                                                                           atol=1e-6)
    assert (f > 0).any()
    result = {
        "note": "written by tests/reference/saelens_load_reference.py from "
                "tests/fixtures/sae/saelens_folded/ (loaded as SAELens 5.x and 6.x do)",
        "scale": cfg["activation_norm_scaling_factor_folded"],
        "loaded_by": report,
        "x": tensor_json(x),
        "feature_acts": tensor_json(f),
        "sae_out": tensor_json(out),
    }
    path = os.path.join(FIXTURE, "forward_reference.json")
    with open(path, "w") as fh:
        json.dump(result, fh, indent=1)
        fh.write("\n")
    print(json.dumps(report, indent=2))
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
