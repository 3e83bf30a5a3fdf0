"""Training runs that a suite asks for, done (or resumed) before its cells are computed.

A suite in ``datasets.yaml`` may list training runs; its ``methods`` then point at their checkpoints:

    suites:
      densegan_epochs:
        train:
          - {method: densegan, profile: cpu, out: runs/densegan-cpu, epochs: 4,
             set: [train.max_steps_per_epoch=60]}       # optional config overrides, section.key=value
        methods:
          - {method: densegan, epochs: [1, 2, 3, 4],
             weights: "runs/densegan-cpu/checkpoints/epoch_{epoch:04d}.safetensors"}

A trainable method lives in a package whose ``train`` module offers
``resolve_config(method, config_file, profile, overrides)``, ``train(config, out_dir, resume, datasets)``
(``datasets``: ``name -> dataset``, the registry this module passes in) and
``completed_epochs(run_dir)``, ``check_same_config(run_dir, config)`` (``methods/densegan/train.py``). A run whose folder already holds every
epoch is reused as it is; a run that stopped part-way resumes from its last complete checkpoint; so a
killed suite loses at most the epoch in progress.
"""
from __future__ import annotations

import importlib
import sys
from pathlib import Path

from bench.datasets import REPO, Registry
from common.errors import UserError

ENTRY_KEYS = {"method", "config", "profile", "out", "epochs", "set"}


def trainer_module(method_name: str):
    """The ``train`` module of a trainable method's package (UserError if the method is not trainable)."""
    import methods

    method = methods.get_method(method_name)
    if not method.trainable:
        raise UserError(f"method {method_name!r} is not trainable; a suite's train entry needs a trainable method")
    package = method.fn.__module__
    try:
        return importlib.import_module(f"{package}.train")
    except ModuleNotFoundError:
        raise UserError(f"trainable method {method_name!r} has no training module {package}.train") from None


def run_dir(entry: dict) -> Path:
    """The run folder; relative paths are relative to the working directory, like a suite's ``weights``."""
    return Path(entry.get("out") or f"runs/{entry['method']}-{entry.get('profile') or 'default'}")


def resolved_config(entry: dict, trainer) -> dict:
    overrides = [str(s) for s in entry.get("set") or []]
    if entry.get("epochs") is not None:
        overrides.append(f"train.epochs={int(entry['epochs'])}")
    config_file = Path(entry["config"]) if entry.get("config") else None
    return trainer.resolve_config(entry["method"], config_file, entry.get("profile"), overrides)


def registry_datasets(name: str):
    """The dataset resolver a trainer's data section needs (``name -> dataset``), from datasets.yaml."""
    return Registry().dataset(name)      # a stand-in (fallback) dataset is announced on stderr


def run_train(args) -> Path:
    """``bench train``: the config from the command line (file, profile, ``--set``, ``--dataset``,
    ``--epochs``), trained into ``--out`` by the method's trainer with the dataset registry passed in."""
    import json
    import os

    method = getattr(args, "method", None) or "densegan"
    trainer = trainer_module(method)
    if getattr(args, "data_root", None) is not None:
        if not Path(args.data_root).is_dir():
            raise UserError(f"--data-root {args.data_root}: no such folder")
        os.environ["FUSION_DATA_ROOT"] = str(Path(args.data_root).resolve())
    overrides = list(args.overrides or [])
    if args.dataset:
        overrides.append(f"data.datasets={json.dumps(args.dataset.split(','))}")
    if args.epochs is not None:
        overrides.append(f"train.epochs={args.epochs}")
    config = trainer.resolve_config(method, args.config, args.profile, overrides)
    out = args.out or REPO / "runs" / f"{config.get('method', method)}-{args.profile}"
    path = trainer.train(config, out, resume=args.resume, datasets=registry_datasets)
    if int(os.environ.get("RANK", 0)) == 0:
        print(f"generator weights: {path}")
    return path


def ensure_trained(entry: dict) -> dict:
    """Train (or finish training) one suite entry; returns what the report needs to know about the run."""
    unknown = set(entry) - ENTRY_KEYS
    if "method" not in entry or unknown:
        raise UserError(f"suite train entry {entry!r}: needs 'method'; allowed keys {sorted(ENTRY_KEYS)}")
    trainer = trainer_module(entry["method"])
    config = resolved_config(entry, trainer)
    out = run_dir(entry)
    wanted = int(config["train"]["epochs"])
    done = trainer.completed_epochs(out) if out.exists() else []
    if done:
        trainer.check_same_config(out, config)   # reuse or resume only the same experiment
    if done and done[-1] >= wanted:
        print(f"note: training run {out} already has epoch {done[-1]} (>= {wanted}); reusing it", file=sys.stderr)
    else:
        if done:
            print(f"note: resuming training run {out} after epoch {done[-1]}", file=sys.stderr)
        trainer.train(config, out, resume=bool(done), datasets=registry_datasets)
    return {"method": entry["method"], "out": str(out), "epochs": wanted,
            "loss_curve": str(out / "loss_curve.png") if (out / "loss_curve.png").exists() else None}


def ensure_suite_trained(suite: dict) -> list[dict]:
    entries = suite.get("train") or []
    if not isinstance(entries, list):
        raise UserError(f"a suite's 'train' must be a list of training runs, got {type(entries).__name__}")
    return [ensure_trained(entry) for entry in entries]
