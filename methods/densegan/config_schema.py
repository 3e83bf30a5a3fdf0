"""The dense-block GAN's training config, checked whole before a run folder is made.

``check_config(cfg)`` raises one ``UserError`` naming the first problem: an unknown section or key (a
misspelt ``train.epoch`` would otherwise be ignored), a value of the wrong type, or one out of range.
Every key any config or profile may set is listed here with its type and allowed values; the defaults
live in ``methods/configs/densegan.yaml``.
"""
from __future__ import annotations

from numbers import Real

from common.errors import UserError


def _int(lo=None, hi=None, none=False):
    return ("int", lo, hi, none)


def _num(lo=None, hi=None, none=False, open_lo=False):
    return ("num", lo, hi, none, open_lo)


def _choice(*values):
    return ("choice", values)


BOOL = ("bool",)
STR = ("str",)
STR_LIST = ("str_list",)
ANY = ("any",)

SCHEMA: dict[str, dict[str, tuple]] = {
    "model": {"encoder": _choice("dense", "plain"), "stem_channels": _int(1), "growth": _int(1),
              "dense_layers": _int(0), "decoder_channels": ("int_list",), "fusion_rule": STR,
              "output_activation": _choice("clamp", "sigmoid")},
    "discriminator": {"base_channels": _int(1), "layers": _int(1), "leaky_slope": _num(0, 1),
                      "batch_norm": BOOL, "init": _choice("default", "dcgan"),
                      "kind": _choice("dcgan", "patchgan", "gradient"), "spectral_norm": BOOL, "dual": BOOL},
    "loss": {"lambda_adv": _num(0), "lambda_detail": _num(0), "lambda_ssim": _num(0), "lambda_int": _num(0),
             "gradient_target": _choice("max", "detail"), "intensity_target": _choice("mean", "max", "salience"),
             "local_sigma": _num(0, open_lo=True), "local_power": _num(0, open_lo=True), "ssim_window": _int(3),
             "ssim_sigma": _num(0, open_lo=True), "lambda_local_int": _num(0), "lambda_local_contrast": _num(0),
             "lambda_texture": _num(0), "texture_mode": _choice("signed", "magnitude"), "lambda_freq": _num(0),
             "lambda_equivariance": _num(0), "equivariance_transforms": STR_LIST,
             "lambda_perceptual": _num(0), "perceptual_layers": STR_LIST, "perceptual_weights": ("str_or_none",)},
    "optim": {"lr_g": _num(0, open_lo=True), "lr_d": _num(0, open_lo=True), "betas": ("betas",),
              "weight_decay": _num(0), "schedule": _choice("constant", "cosine"), "lr_min_factor": _num(0, 1),
              "warmup_steps": _int(0)},
    "data": {"datasets": STR_LIST, "synthetic": ("synthetic",), "max_pairs_per_dataset": _int(1, none=True),
             "patch_size": _int(8, none=True), "flips": BOOL, "rot90": BOOL, "cache": BOOL,
             "patches_per_pair": _int(1), "val_datasets": STR_LIST, "val_pairs": _int(1, none=True)},
    "train": {"epochs": _int(1), "batch_size": _int(1), "seed": _int(0), "max_steps_per_epoch": _int(1, none=True),
              "num_workers": _int(0), "deterministic": BOOL, "threads": _int(1, none=True), "device": STR,
              "log_every": _int(1), "keep_checkpoints": BOOL, "keep_generators": BOOL, "precision": _choice("fp32", "bf16", "auto"),
              "ema_decay": _num(0, 1, none=True, open_lo=True), "init_from": ("str_or_none",),
              "freeze": ("str_list_or_none",)},
}
TOP_LEVEL = {"method", "profile", *SCHEMA}


def _problem(kind: tuple, value) -> str | None:
    """What is wrong with ``value`` for a key of ``kind``, or None."""
    tag = kind[0]
    if tag in ("int", "num"):
        none = kind[3]
        if value is None:
            return None if none else "a number, not null"
        if isinstance(value, bool) or not isinstance(value, int if tag == "int" else Real):
            return f"{'an integer' if tag == 'int' else 'a number'}, got {value!r}"
        lo, hi = kind[1], kind[2]
        open_lo = tag == "num" and kind[4]
        if lo is not None and (value <= lo if open_lo else value < lo):
            return f"{'>' if open_lo else '>='} {lo}, got {value!r}"
        if hi is not None and value > hi:
            return f"<= {hi}, got {value!r}"
        return None
    if tag == "choice":
        return None if value in kind[1] else f"one of {', '.join(map(str, kind[1]))}, got {value!r}"
    if tag == "bool":
        return None if isinstance(value, bool) else f"true or false, got {value!r}"
    if tag == "str":
        return None if isinstance(value, str) else f"a name, got {value!r}"
    if tag == "str_or_none":
        return None if value is None or isinstance(value, str) else f"a path or null, got {value!r}"
    if tag in ("str_list", "str_list_or_none"):
        if value is None and tag == "str_list_or_none":
            return None
        if isinstance(value, str) or (isinstance(value, list) and all(isinstance(v, str) for v in value)):
            return None
        return f"a list of names, got {value!r}"
    if tag == "int_list":
        ok = isinstance(value, list) and value and all(isinstance(v, int) and not isinstance(v, bool) and v > 0
                                                        for v in value)
        return None if ok else f"a non-empty list of positive integers, got {value!r}"
    if tag == "betas":
        ok = (isinstance(value, list) and len(value) == 2
              and all(isinstance(v, Real) and not isinstance(v, bool) and 0 <= v < 1 for v in value))
        return None if ok else f"two numbers in [0, 1), got {value!r}"
    if tag == "synthetic":
        ok = (isinstance(value, dict) and set(value) == {"pairs", "size"}
              and all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in value.values()))
        return None if value is None or ok else f"{{pairs: N, size: N}} with positive integers, got {value!r}"
    return None


def check_config(cfg: dict, where: str = "training config") -> dict:
    """``cfg`` unchanged when every section, key and value is known and valid; else one UserError."""
    if not isinstance(cfg, dict):
        raise UserError(f"{where}: the top level must be a mapping of sections, got {type(cfg).__name__}")
    unknown = sorted(set(cfg) - TOP_LEVEL)
    if unknown:
        raise UserError(f"{where}: unknown section(s) {', '.join(map(str, unknown))} "
                        f"(known: {', '.join(SCHEMA)})")
    for section, keys in SCHEMA.items():
        values = cfg.get(section)
        if not isinstance(values, dict):
            raise UserError(f"{where}: section {section} must be a mapping of keys, got {values!r}")
        for key, value in values.items():
            if key not in keys:
                raise UserError(f"{where}: unknown key {section}.{key} (known in {section}: {', '.join(keys)})")
            problem = _problem(keys[key], value)
            if problem:
                raise UserError(f"{where}: {section}.{key} must be {problem}")
    if not (cfg["data"].get("datasets") or cfg["data"].get("synthetic")):
        raise UserError(f"{where}: data.datasets lists no dataset (and no data.synthetic)")
    patch = cfg["data"].get("patch_size")
    window = cfg["loss"].get("ssim_window", 11)
    if patch is not None and patch < window:
        raise UserError(f"{where}: data.patch_size {patch} is smaller than loss.ssim_window {window}")
    return cfg
