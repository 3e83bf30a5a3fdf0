"""Train the dense-block GAN (and its ablations): configs, loop, checkpoints, resume, DDP.

Run it as ``python -m bench train --method densegan [options]``, standalone as
``python -m methods.densegan.train --method densegan [options]``, or on several GPUs/nodes with
``torchrun --nproc_per_node 2 -m methods.densegan.train ...`` (DistributedDataParallel: NCCL on GPU,
gloo on CPU; a DistributedSampler gives every rank a disjoint share; rank 0 logs and checkpoints).

The run folder holds ``config.yaml`` (the resolved config), ``log_steps.csv`` / ``log_epochs.csv``,
``loss_curve.png``, ``checkpoints/epoch_NNNN.safetensors`` (G and D weights) with
``epoch_NNNN.state.pt`` (epoch, step, RNG and optimizer states), and ``generator.safetensors`` (the
final generator, the form shipped in methods/weights/). ``--resume`` continues from the last complete
epoch; on CPU with ``deterministic: true`` a resumed run reproduces an uninterrupted one exactly.
"""
from __future__ import annotations

import argparse
import copy
import csv
import gc
import json
import math
import os
import sys
import time
from pathlib import Path

import torch
import torch.distributed as dist
import yaml
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, DistributedSampler

from bench.errors import UserError, report_user_error
from methods.densegan.arguments import add_train_arguments
from methods.densegan.checkpoint import (load_state, load_weights, prefixed, save_generator, save_state,
                                         save_weights, unprefixed)
from methods.densegan.data import FusionPairs
from methods.densegan.losses import discriminator_loss, generator_loss
from methods.densegan.discriminators import build_discriminator, dual_discriminator_logits
from methods.densegan.model import Generator, GeneratorConfig
from methods.densegan.rules_plus import load_stage_one

CONFIG_DIR = Path(__file__).resolve().parents[1] / "configs"
REPO = Path(__file__).resolve().parents[2]
SECTIONS = ("model", "discriminator", "loss", "optim", "data", "train")
STEP_FIELDS = ("epoch", "step", "loss_d", "loss_g", "adv", "detail", "ssim", "int", "seconds")


# ----------------------------------------------------------------------------------------- config

def deep_merge(base: dict, over: dict) -> dict:
    out = copy.deepcopy(base)
    for k, v in (over or {}).items():
        out[k] = deep_merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else copy.deepcopy(v)
    return out


def read_config_file(path: Path) -> dict:
    path = Path(path)
    try:
        cfg = yaml.safe_load(path.read_text()) or {}
    except FileNotFoundError:
        raise UserError(f"config file {path} not found") from None
    except yaml.YAMLError as exc:
        raise UserError(f"{path}: not valid YAML ({str(exc).splitlines()[0]})") from None
    if "inherit" in cfg:
        parent = read_config_file(path.parent / cfg.pop("inherit"))
        cfg = deep_merge(parent, cfg)
    return cfg


def set_dotted(cfg: dict, assignment: str) -> None:
    """Apply ``section.key=value`` (value parsed as YAML) to ``cfg``."""
    if "=" not in assignment:
        raise UserError(f"--set expects section.key=value, got {assignment!r}")
    key, value = assignment.split("=", 1)
    node = cfg
    *parents, leaf = key.split(".")
    for p in parents:
        node = node.setdefault(p, {})
    node[leaf] = yaml.safe_load(value)


def resolve_config(method: str = "densegan", config_file: Path | None = None, profile: str | None = "cpu",
                   overrides: list[str] = ()) -> dict:
    """The training config: file (with ``inherit``) -> ``profiles[profile]`` -> ``section.key=value`` overrides."""
    path = Path(config_file) if config_file else CONFIG_DIR / f"{method}.yaml"
    if not config_file and not path.is_file():
        raise UserError(f"no config for method {method!r} at {path}")
    cfg = read_config_file(path)
    profiles = cfg.pop("profiles", {}) or {}
    if profile:
        if profile not in profiles:
            raise UserError(f"{path}: no profile {profile!r} (has: {', '.join(profiles) or 'none'})")
        cfg = deep_merge(cfg, profiles[profile])
        cfg["profile"] = profile
    for assignment in overrides:
        set_dotted(cfg, assignment)
    missing = [s for s in SECTIONS if s not in cfg]
    if missing:
        raise UserError(f"{path}: config lacks section(s) {', '.join(missing)}")
    return cfg


# ----------------------------------------------------------------------------------------- DDP

def _distributed() -> tuple[int, int, int]:
    """(rank, world_size, local_rank) from torchrun's environment; (0, 1, 0) when not distributed."""
    return (int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1)),
            int(os.environ.get("LOCAL_RANK", 0)))


def _device(requested: str, local_rank: int) -> torch.device:
    if requested == "auto":
        return torch.device(f"cuda:{local_rank}") if torch.cuda.is_available() else torch.device("cpu")
    return torch.device(requested)


# ----------------------------------------------------------------------------------------- logging

def _read_rows(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def _write_rows(path: Path, rows: list[dict], fields) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(fields), extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    os.replace(tmp, path)


def plot_loss_curve(run_dir: Path) -> Path:
    """``loss_curve.png``: every logged loss term against the step (matplotlib Agg)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = _read_rows(run_dir / "log_steps.csv")
    fig, ax = plt.subplots(figsize=(7, 4))
    steps = [int(r["step"]) for r in rows]
    for key in STEP_FIELDS[2:-1]:
        values = [float(r[key]) if r.get(key) not in (None, "") else math.nan for r in rows]
        if any(not math.isnan(v) for v in values):
            ax.plot(steps, values, label=key)
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.set_yscale("log")
    if ax.lines:
        ax.legend(fontsize=8)
    ax.set_title(f"{run_dir.name}: training losses")
    fig.tight_layout()
    out = run_dir / "loss_curve.png"
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out


# ----------------------------------------------------------------------------------------- checkpoints

def checkpoint_paths(run_dir: Path, epoch: int) -> tuple[Path, Path]:
    stem = Path(run_dir) / "checkpoints" / f"epoch_{epoch:04d}"
    return stem.with_suffix(".safetensors"), stem.with_suffix(".state.pt")


def completed_epochs(run_dir: Path) -> list[int]:
    """Epochs whose weights and state are both on disk, ascending."""
    found = []
    for p in (Path(run_dir) / "checkpoints").glob("epoch_*.safetensors"):
        epoch = int(p.stem.split("_")[1])
        if checkpoint_paths(run_dir, epoch)[1].is_file():
            found.append(epoch)
    return sorted(found)


def _differences(old, new, prefix="") -> list[str]:
    if isinstance(old, dict) and isinstance(new, dict):
        return [d for k in sorted(set(old) | set(new), key=str)
                for d in _differences(old.get(k), new.get(k), f"{prefix}{k}.")]
    return [prefix.rstrip(".")] if old != new else []


def check_same_config(out_dir: Path, config: dict) -> None:
    """Resuming continues the same experiment: only ``train.epochs`` may change (to train further)."""
    path = Path(out_dir) / "config.yaml"
    if not path.is_file():
        return
    previous = yaml.safe_load(path.read_text()) or {}
    ignore = {"train.epochs"}
    changed = [d for d in _differences(previous, config) if d not in ignore]
    if changed:
        raise UserError(f"{out_dir} was trained with a different config ({', '.join(changed[:5])} differ); "
                        f"resume it with the same config, or train into another --out")


def _rng_state(device: torch.device) -> dict:
    state = {"torch": torch.get_rng_state()}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


# ----------------------------------------------------------------------------------------- training

def _fit(config: dict, out_dir: Path, resume: bool):
    """The training loop. Returns (generator path or None off rank 0, generator module, indices seen)."""
    rank, world, local_rank = _distributed()
    tc = config["train"]
    device = _device(tc.get("device", "auto"), local_rank)
    # Thread count and determinism are process-wide: set them for the run, restore them afterwards.
    saved_threads = torch.get_num_threads()
    saved_deterministic = (torch.are_deterministic_algorithms_enabled(),
                           torch.is_deterministic_algorithms_warn_only_enabled())
    if tc.get("threads"):
        torch.set_num_threads(int(tc["threads"]))
    if tc.get("deterministic", True):
        torch.use_deterministic_algorithms(True, warn_only=device.type != "cpu")
    own_group = world > 1 and not dist.is_initialized()
    if own_group:
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    if device.type == "cuda":
        torch.cuda.set_device(device)
    out_dir = Path(out_dir)
    g_model = d_model = None
    try:
        torch.manual_seed(int(tc["seed"]))
        gen_cfg = GeneratorConfig.from_dict(config["model"])
        generator = Generator(gen_cfg).to(device)
        # issue-#6 hook: kind/spectral_norm/dual options; without them exactly Discriminator(config)
        discriminator = build_discriminator(config["discriminator"]).to(device)
        load_stage_one(generator, tc)       # issue-#6 hook: RFN-Nest stage 2 (no-op without train.init_from)
        oc = config["optim"]
        opt_g = torch.optim.Adam([p for p in generator.parameters() if p.requires_grad], lr=oc["lr_g"], betas=tuple(oc["betas"]),
                                 weight_decay=oc["weight_decay"])
        opt_d = torch.optim.Adam(discriminator.parameters(), lr=oc["lr_d"], betas=tuple(oc["betas"]),
                                 weight_decay=oc["weight_decay"])

        start_epoch, step = 0, 0
        done = completed_epochs(out_dir)
        if done and not resume:
            raise UserError(f"{out_dir} already holds checkpoints (epoch {done[-1]}); pass --resume to continue "
                            f"or choose another --out")
        if resume and done:
            check_same_config(out_dir, config)
            start_epoch = done[-1]
            weights_path, state_path = checkpoint_paths(out_dir, start_epoch)
            tensors, _ = load_weights(weights_path)
            generator.load_state_dict(unprefixed(tensors, "generator"))
            discriminator.load_state_dict(unprefixed(tensors, "discriminator"))
            state = load_state(state_path)
            opt_g.load_state_dict(state["opt_g"])
            opt_d.load_state_dict(state["opt_d"])
            step = int(state["step"])
            torch.set_rng_state(state["rng"]["torch"])
            if device.type == "cuda" and "cuda" in state["rng"]:
                torch.cuda.set_rng_state(state["rng"]["cuda"], device)

        if rank == 0:
            out_dir.mkdir(parents=True, exist_ok=True)
            (out_dir / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
            # A killed run may have logged steps past its last checkpoint: drop them, they are redone.
            for name, key in (("log_steps.csv", STEP_FIELDS), ("log_epochs.csv", STEP_FIELDS)):
                rows = [r for r in _read_rows(out_dir / name) if int(r["epoch"]) <= start_epoch]
                _write_rows(out_dir / name, rows, key)

        g_model, d_model = generator, discriminator
        if world > 1:
            ids = [device.index] if device.type == "cuda" else None
            g_model = DistributedDataParallel(generator, device_ids=ids)
            d_model = DistributedDataParallel(discriminator, device_ids=ids)

        data = FusionPairs(config["data"], seed=int(tc["seed"]))
        sampler = DistributedSampler(data, num_replicas=world, rank=rank, shuffle=True, seed=int(tc["seed"]),
                                     drop_last=True)
        loader = DataLoader(data, batch_size=int(tc["batch_size"]), sampler=sampler, drop_last=True,
                            num_workers=int(tc.get("num_workers", 0)))
        if len(loader) == 0:
            raise UserError(f"batch_size {tc['batch_size']} x {world} rank(s) exceeds the {len(data)} training pairs")
        steps_per_epoch = min(len(loader), int(tc.get("max_steps_per_epoch") or len(loader)))
        loss_cfg = config["loss"]
        seen: list[int] = []
        epochs = int(tc["epochs"])

        from tqdm import tqdm
        for epoch in range(start_epoch + 1, epochs + 1):
            sampler.set_epoch(epoch)
            data.set_epoch(epoch)
            seen.extend(list(sampler)[: steps_per_epoch * int(tc["batch_size"])])
            generator.train()
            discriminator.train()
            sums: dict[str, float] = {}
            rows: list[dict] = []
            t0 = time.perf_counter()
            bar = tqdm(zip(range(steps_per_epoch), loader), total=steps_per_epoch, disable=rank != 0,
                       desc=f"{config.get('method', 'densegan')} epoch {epoch}/{epochs}", leave=False,
                       dynamic_ncols=True)
            for _, (a, b, detail) in bar:
                a, b, detail = a.to(device), b.to(device), detail.to(device)
                fused = g_model(a, b)

                # Discriminator step: detail-rich source = real, fused = fake.
                for p in discriminator.parameters():
                    p.requires_grad_(True)
                opt_d.zero_grad(set_to_none=True)
                if getattr(discriminator, "dual", False):   # issue-#6 hook: DDcGAN, D_A vs A and D_B vs B
                    real_logits, fake_logits = dual_discriminator_logits(d_model, a, b, fused.detach())
                else:
                    logits = d_model(torch.cat([detail, fused.detach()], dim=0))
                    real_logits, fake_logits = logits.chunk(2)
                loss_d = discriminator_loss(real_logits, fake_logits)
                loss_d.backward()
                opt_d.step()

                # Generator step through the frozen, unwrapped discriminator (no gradient sync for D here).
                for p in discriminator.parameters():
                    p.requires_grad_(False)
                opt_g.zero_grad(set_to_none=True)
                loss_g, terms = generator_loss(fused, a, b, detail, discriminator(fused), loss_cfg)
                loss_g.backward()
                opt_g.step()

                step += 1
                values = {"loss_d": float(loss_d.detach()), "loss_g": float(loss_g.detach()), **terms}
                for k, v in values.items():
                    sums[k] = sums.get(k, 0.0) + v
                bar.set_postfix({k: f"{v:.3g}" for k, v in values.items()})
                if rank == 0 and (step % int(tc.get("log_every", 10)) == 0):
                    rows.append({"epoch": epoch, "step": step, **values,
                                 "seconds": round(time.perf_counter() - t0, 3)})
            for p in discriminator.parameters():
                p.requires_grad_(True)

            if rank == 0:
                means = {k: v / steps_per_epoch for k, v in sums.items()}
                _write_rows(out_dir / "log_steps.csv", _read_rows(out_dir / "log_steps.csv") + rows, STEP_FIELDS)
                _write_rows(out_dir / "log_epochs.csv", _read_rows(out_dir / "log_epochs.csv")
                            + [{"epoch": epoch, "step": step, **means,
                                "seconds": round(time.perf_counter() - t0, 3)}], STEP_FIELDS)
                weights_path, state_path = checkpoint_paths(out_dir, epoch)
                meta = {"generator_config": json.dumps(gen_cfg.to_dict()), "epoch": str(epoch)}
                save_weights({**prefixed(generator, "generator"), **prefixed(discriminator, "discriminator")},
                             weights_path, meta)
                save_state({"epoch": epoch, "step": step, "rng": _rng_state(device),
                            "opt_g": opt_g.state_dict(), "opt_d": opt_d.state_dict()}, state_path)
                if not tc.get("keep_checkpoints", True):
                    for old in completed_epochs(out_dir)[:-1]:
                        for p in checkpoint_paths(out_dir, old):
                            p.unlink(missing_ok=True)
                plot_loss_curve(out_dir)
                print(f"epoch {epoch}/{epochs}: " + ", ".join(f"{k} {v:.4g}" for k, v in means.items())
                      + f" ({time.perf_counter() - t0:.1f} s)", file=sys.stderr)
            if world > 1:
                dist.barrier()

        final = None
        if rank == 0:
            final = save_generator(generator.cpu(), out_dir / "generator.safetensors",
                                   {"method": str(config.get("method", "densegan")), "epochs": str(epochs),
                                    "steps": str(step)})
            generator.to(device)
        return final, generator, seen
    finally:
        torch.set_num_threads(saved_threads)
        torch.use_deterministic_algorithms(saved_deterministic[0], warn_only=saved_deterministic[1])
        if own_group:
            # Free DDP's reducers while the group is still registered. A reducer holds the group in C++;
            # were its dealloc to drop the last reference, Gloo's destructor would join its worker thread
            # with the GIL held while that thread waits for the GIL to free its last (barrier) work:
            # a deadlock, seen once at the end of test_two_process_ddp_step in the full test run.
            g_model = d_model = None
            gc.collect()
            dist.destroy_process_group()


def train(config: dict, out_dir: Path, resume: bool = False) -> Path:
    """Train G and D per ``config`` into ``out_dir``; returns the final generator's safetensors path.

    Parameters
    ----------
    config : dict
        A resolved config (``resolve_config``): sections model, discriminator, loss, optim, data, train.
    out_dir : Path
        The run folder (created); refuses to overwrite checkpoints unless ``resume``.
    resume : bool
        Continue from the last epoch whose weights and state are both present.

    Returns
    -------
    Path
        ``out_dir/generator.safetensors`` (on non-zero ranks: the path rank 0 writes).
    """
    final, _, _ = _fit(config, out_dir, resume)
    return final or Path(out_dir) / "generator.safetensors"


# ----------------------------------------------------------------------------------------- CLI

def run_train(args: argparse.Namespace) -> Path:
    method = getattr(args, "method", None) or "densegan"
    overrides = list(args.overrides or [])
    if args.dataset:
        overrides.append(f"data.datasets={json.dumps(args.dataset.split(','))}")
    if args.epochs is not None:
        overrides.append(f"train.epochs={args.epochs}")
    config = resolve_config(method, args.config, args.profile, overrides)
    out = args.out or REPO / "runs" / f"{config.get('method', method)}-{args.profile}"
    path = train(config, out, resume=args.resume)
    if _distributed()[0] == 0:
        print(f"generator weights: {path}")
    return path


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m methods.densegan.train", description=__doc__.splitlines()[0])
    parser.add_argument("--method", default="densegan", help="densegan, densegan-nodense, densegan-noloss, ...")
    add_train_arguments(parser)
    try:
        run_train(parser.parse_args(argv))
    except UserError as exc:
        return report_user_error(exc)
    return 0


if __name__ == "__main__":
    sys.exit(main())
