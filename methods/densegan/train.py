"""Train the dense-block GAN (and its ablations): configs, loop, checkpoints, resume, DDP.

Run it as ``python -m bench train --method densegan [options]`` (``bench/training.py`` resolves the
config and passes the dataset registry in), or on several GPUs/nodes with ``torchrun --nproc_per_node 2
-m bench train ...`` (DistributedDataParallel: NCCL on GPU, gloo on CPU; a DistributedSampler gives every
rank a disjoint share; rank 0 logs and checkpoints).

The run folder holds ``config.yaml`` (the resolved config), ``log_steps.csv`` / ``log_epochs.csv``,
``loss_curve.png``, ``checkpoints/epoch_NNNN.safetensors`` (G and D weights) with
``epoch_NNNN.state.pt`` (epoch, step, RNG and optimizer states), and ``generator.safetensors`` (the
final generator, the form shipped in methods/weights/). ``--resume`` continues from the last complete
epoch; on CPU with ``deterministic: true`` a resumed run reproduces an uninterrupted one exactly.
"""
from __future__ import annotations

import copy
import gc
import json
import math
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
import yaml
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, DistributedSampler

from common.colour import luma
from common.errors import UserError
from common.io import read_csv_rows, read_yaml_mapping, write_csv_rows
from methods.densegan.config_schema import check_config
from methods.densegan.checkpoint import (load_state, load_weights, prefixed, save_generator, save_state,
                                         save_weights, unprefixed)
from methods.densegan.data import FusionPairs
from methods.densegan.discriminators import build_discriminator, discriminator_inputs
from methods.densegan.losses import fake_loss, generator_loss, real_loss, weighted_shares
from methods.densegan.losses_plus import draw_transform, equivariance_loss
from methods.densegan.model import Generator, GeneratorConfig
from methods.densegan.rules_plus import load_stage_one

CONFIG_DIR = Path(__file__).resolve().parents[1] / "configs"
REPO = Path(__file__).resolve().parents[2]
SECTIONS = ("model", "discriminator", "loss", "optim", "data", "train")
VALIDATION_METRICS = ("Qabf", "VIF", "SSIM", "MI")


# ----------------------------------------------------------------------------------------- config

def deep_merge(base: dict, over: dict) -> dict:
    out = copy.deepcopy(base)
    for k, v in (over or {}).items():
        out[k] = deep_merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else copy.deepcopy(v)
    return out


def read_config_file(path: Path) -> dict:
    path = Path(path)
    cfg = read_yaml_mapping(path, "config file")
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
    for i, p in enumerate(parents):
        node = node.setdefault(p, {})
        if not isinstance(node, dict):
            raise UserError(f"--set {assignment}: {'.'.join(parents[:i + 1])} is a value, not a section")
    try:
        node[leaf] = yaml.safe_load(value)
    except yaml.YAMLError as exc:
        raise UserError(f"--set {assignment}: the value is not valid YAML ({str(exc).splitlines()[0]})") from None


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
    return check_config(cfg, str(path))


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

def plot_loss_curve(run_dir: Path) -> Path:
    """``loss_curve.png``: every logged loss term against the step (matplotlib Agg)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = read_csv_rows(run_dir / "log_steps.csv")
    fig, ax = plt.subplots(figsize=(7, 4))
    steps = [int(r["step"]) for r in rows]
    not_losses = {"epoch", "step", "seconds", "lr_factor"}
    for key in [k for k in (rows[0] if rows else {}) if k not in not_losses and not k.startswith("share_")]:
        values = [float(r[key]) if r.get(key) not in (None, "") else math.nan for r in rows]
        if any(not math.isnan(v) for v in values):
            ax.plot(steps, values, label=key)
    ax.set_yscale("log")
    return _save_figure(fig, ax, "step", "loss", f"{run_dir.name}: training losses", run_dir / "loss_curve.png")


def _save_figure(fig, ax, xlabel: str, ylabel: str, title: str, out: Path) -> Path:
    import matplotlib.pyplot as plt

    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if ax.lines:
        ax.legend(fontsize=8)
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out


# ----------------------------------------------------------------------------------------- checkpoints

def checkpoint_paths(run_dir: Path, epoch: int) -> tuple[Path, Path]:
    stem = Path(run_dir) / "checkpoints" / f"epoch_{epoch:04d}"
    return stem.with_suffix(".safetensors"), stem.with_suffix(".state.pt")


def epoch_generator_path(run_dir: Path, epoch: int) -> Path:
    """Where ``train.keep_generators`` puts an epoch's generator (the shipped form, ~0.3 MB): a ``weights=``
    file for the epoch analysis, e.g. ``weights: "<run>/generators/epoch_{epoch:04d}.safetensors"``."""
    return Path(run_dir) / "generators" / f"epoch_{epoch:04d}.safetensors"


def completed_epochs(run_dir: Path) -> list[int]:
    """Epochs whose weights and state are both on disk, ascending."""
    found = []
    for p in (Path(run_dir) / "checkpoints").glob("epoch_*.safetensors"):
        epoch = int(p.stem.split("_")[1])
        if checkpoint_paths(run_dir, epoch)[1].is_file():
            found.append(epoch)
    return sorted(found)


_ABSENT = object()


def _differences(old, new, defaults, prefix="") -> list[str]:
    """Dotted keys whose values differ. A key the old config lacks (added to the schema after that run
    started) differs only where the new value is not its default in ``densegan.yaml``: an option that
    defaults to the old behaviour does not change the experiment."""
    if isinstance(old, dict) and isinstance(new, dict):
        defaults = defaults if isinstance(defaults, dict) else {}
        return [d for k in sorted(set(old) | set(new), key=str)
                for d in _differences(old.get(k, _ABSENT), new.get(k, _ABSENT), defaults.get(k, _ABSENT),
                                      f"{prefix}{k}.")]
    if old is _ABSENT and defaults is not _ABSENT and new == defaults:
        return []
    return [prefix.rstrip(".")] if old != new else []


def check_same_config(out_dir: Path, config: dict) -> None:
    """Resuming continues the same experiment: only ``train.epochs`` may change (to train further)."""
    path = Path(out_dir) / "config.yaml"
    if not path.is_file():
        return
    previous = yaml.safe_load(path.read_text()) or {}
    defaults = yaml.safe_load((CONFIG_DIR / "densegan.yaml").read_text())
    ignore = {"train.epochs"}
    changed = [d for d in _differences(previous, config, defaults) if d not in ignore]
    if changed:
        raise UserError(f"{out_dir} was trained with a different config ({', '.join(changed[:5])} differ); "
                        f"resume it with the same config, or train into another --out")


def _rng_state(device: torch.device) -> dict:
    state = {"torch": torch.get_rng_state()}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


# ----------------------------------------------------------------------------------------- training

@dataclass
class TrainingRun:
    """Everything one training run holds between steps (built by ``start_run``)."""
    config: dict
    out_dir: Path
    device: torch.device
    rank: int
    world: int
    generator: Generator
    discriminator: torch.nn.Module
    g_model: torch.nn.Module            # the generator, DDP-wrapped when distributed
    d_model: torch.nn.Module
    opt_g: torch.optim.Optimizer
    opt_d: torch.optim.Optimizer
    ema: Generator | None               # exponential moving average of the generator (train.ema_decay)
    data: FusionPairs
    sampler: DistributedSampler
    loader: DataLoader
    steps_per_epoch: int
    start_epoch: int
    step: int
    best_score: float = -math.inf
    best_epoch: int = 0
    cpu_seconds: float = 0.0
    seen: list[int] = field(default_factory=list)

    @property
    def total_steps(self) -> int:
        return int(self.config["train"]["epochs"]) * self.steps_per_epoch

    @property
    def samples_per_step(self) -> int:
        return int(self.config["train"]["batch_size"]) * self.world

    @property
    def inference_generator(self) -> Generator:
        """The generator that is validated, checkpointed as best and shipped: the EMA one when enabled."""
        return self.ema if self.ema is not None else self.generator


def autocast_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """``train.precision``: fp32 (None), bf16, or auto = bf16 where the hardware runs it natively.

    bf16 autocast covers the generator and discriminator forward passes (and so their backward passes);
    the loss terms are computed in fp32 from the fp32 copy of the fused image, so SSIM's variances are not
    taken in bf16. Weights and optimizer states stay fp32; inference and validation are fp32.
    """
    if precision == "fp32":
        return None
    if precision == "bf16":
        return torch.bfloat16
    if precision != "auto":
        raise UserError(f"train config: precision must be fp32, bf16 or auto, got {precision!r}")
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else None
    return torch.bfloat16 if torch.ops.mkldnn._is_mkldnn_bf16_supported() else None


def learning_rate_factor(optim_cfg: dict, step: int, total_steps: int) -> float:
    """Multiplier of the base learning rates at ``step`` (0-based): ``optim.schedule`` constant, or cosine
    from 1 down to ``lr_min_factor`` over the run after ``warmup_steps`` of linear warm-up."""
    schedule = optim_cfg.get("schedule", "constant")
    warmup = int(optim_cfg.get("warmup_steps", 0) or 0)
    if step < warmup:
        return (step + 1) / warmup
    if schedule == "constant":
        return 1.0
    if schedule != "cosine":
        raise UserError(f"optim config: schedule must be constant or cosine, got {schedule!r}")
    floor = float(optim_cfg.get("lr_min_factor", 0.1))
    progress = min(1.0, (step - warmup) / max(1, total_steps - warmup))
    return floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * progress))


def ema_decay_at(decay: float, step: int) -> float:
    """The EMA decay used after ``step`` updates: min(decay, (1 + step) / (10 + step)).

    The warm-up (as in TensorFlow's ExponentialMovingAverage with ``num_updates``) keeps the average from
    being dominated by the random initialisation early in a run.
    """
    return min(decay, (1.0 + step) / (10.0 + step))


@torch.no_grad()
def update_ema(ema: Generator, generator: Generator, decay: float) -> None:
    """ema <- decay * ema + (1 - decay) * generator, parameters and buffers (Polyak averaging)."""
    ema_params = [p for p in ema.parameters()]
    torch._foreach_lerp_(ema_params, [p.detach() for p in generator.parameters()], 1.0 - decay)
    for e, g in zip(ema.buffers(), generator.buffers()):
        e.copy_(g)


def check_run_folder(out_dir: Path, resume: bool, epochs: int) -> list[int]:
    """The run folder's complete epochs, after refusing what would lose or misuse a user's files: a file or
    a folder that is not a run (no ``config.yaml``), checkpoints without ``resume``, ``resume`` with nothing
    to resume, or ``resume`` to fewer epochs than are done (it would relabel later weights)."""
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise UserError(f"--out {out_dir} is a file, not a run folder")
    if out_dir.is_dir() and any(out_dir.iterdir()) and not (out_dir / "config.yaml").is_file():
        raise UserError(f"--out {out_dir} holds files but is not a training run (no config.yaml); "
                        f"choose another --out")
    done = completed_epochs(out_dir) if out_dir.is_dir() else []
    if done and not resume:
        raise UserError(f"{out_dir} already holds checkpoints (epoch {done[-1]}); pass --resume to continue "
                        f"or choose another --out")
    if resume and not done:
        raise UserError(f"{out_dir}: nothing to resume (no complete epoch checkpoint); drop --resume to start "
                        f"a new run")
    if resume and done[-1] > epochs:
        raise UserError(f"{out_dir} has trained {done[-1]} epochs, more than the {epochs} asked for; resume "
                        f"with --epochs {done[-1]} or more")
    return done


def start_run(config: dict, out_dir: Path, resume: bool, datasets=None) -> TrainingRun:
    """Build models, optimizers and data; restore them from the last complete epoch when resuming."""
    rank, world, local_rank = _distributed()
    tc = config["train"]
    device = _device(tc.get("device", "auto"), local_rank)
    torch.manual_seed(int(tc["seed"]))
    gen_cfg = GeneratorConfig.from_dict(config["model"])
    generator = Generator(gen_cfg).to(device)
    discriminator = build_discriminator(config["discriminator"]).to(device)
    load_stage_one(generator, tc)       # RFN-Nest stage 2 (no-op without train.init_from)
    oc = config["optim"]
    opt_g = torch.optim.Adam([p for p in generator.parameters() if p.requires_grad], lr=oc["lr_g"],
                             betas=tuple(oc["betas"]), weight_decay=oc["weight_decay"])
    opt_d = torch.optim.Adam(discriminator.parameters(), lr=oc["lr_d"], betas=tuple(oc["betas"]),
                             weight_decay=oc["weight_decay"])
    ema = None
    if tc.get("ema_decay"):
        ema = copy.deepcopy(generator).requires_grad_(False)

    start_epoch, step, best_score, best_epoch, cpu_seconds = 0, 0, -math.inf, 0, 0.0
    done = check_run_folder(out_dir, resume, int(tc["epochs"]))
    if resume and done:
        check_same_config(out_dir, config)
        start_epoch = done[-1]
        weights_path, state_path = checkpoint_paths(out_dir, start_epoch)
        tensors, _ = load_weights(weights_path)
        generator.load_state_dict(unprefixed(tensors, "generator"))
        discriminator.load_state_dict(unprefixed(tensors, "discriminator"))
        if ema is not None:
            ema.load_state_dict(unprefixed(tensors, "ema"))
        state = load_state(state_path)
        opt_g.load_state_dict(state["opt_g"])
        opt_d.load_state_dict(state["opt_d"])
        step = int(state["step"])
        best_score = float(state.get("best_score", -math.inf))
        best_epoch = int(state.get("best_epoch", 0))
        cpu_seconds = float(state.get("cpu_seconds", 0.0))
        torch.set_rng_state(state["rng"]["torch"])
        if device.type == "cuda" and "cuda" in state["rng"]:
            torch.cuda.set_rng_state(state["rng"]["cuda"], device)

    if rank == 0:
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
        # A killed run may have logged past its last checkpoint: drop those rows, the epoch is redone.
        for name in ("log_steps.csv", "log_epochs.csv", "log_val.csv"):
            rows = read_csv_rows(out_dir / name)
            if rows:
                write_csv_rows(out_dir / name, [r for r in rows if int(r["epoch"]) <= start_epoch], list(rows[0]))

    g_model, d_model = generator, discriminator
    if world > 1:
        ids = [device.index] if device.type == "cuda" else None
        g_model = DistributedDataParallel(generator, device_ids=ids)
        d_model = DistributedDataParallel(discriminator, device_ids=ids)

    data = FusionPairs(config["data"], seed=int(tc["seed"]), datasets=datasets)
    sampler = DistributedSampler(data, num_replicas=world, rank=rank, shuffle=True, seed=int(tc["seed"]),
                                 drop_last=True)
    loader = DataLoader(data, batch_size=int(tc["batch_size"]), sampler=sampler, drop_last=True,
                        num_workers=int(tc.get("num_workers", 0)))
    if len(loader) == 0:
        raise UserError(f"batch_size {tc['batch_size']} x {world} rank(s) exceeds the {len(data)} training pairs")
    steps_per_epoch = min(len(loader), int(tc.get("max_steps_per_epoch") or len(loader)))
    return TrainingRun(config, out_dir, device, rank, world, generator, discriminator, g_model, d_model, opt_g,
                       opt_d, ema, data, sampler, loader, steps_per_epoch, start_epoch, step, best_score,
                       best_epoch, cpu_seconds)


def _autocast(run: TrainingRun, dtype: torch.dtype | None):
    """Autocast to ``dtype`` on the run's device; a no-op context for fp32 (``dtype`` None)."""
    return torch.autocast(run.device.type, dtype=dtype or torch.float32, enabled=dtype is not None)


def discriminator_step(run: TrainingRun, a, b, detail, fused, autocast: torch.dtype | None) -> float:
    """One D update: BCE(D(real), 1) and BCE(D(F), 0), real and fake in separate forward passes.

    Each pass is followed by its own backward (as the DCGAN reference does), so batch norm only ever sees a
    batch of real or a batch of fake images, and DDP reduces each pass's gradients on its own.
    """
    run.opt_d.zero_grad(set_to_none=True)
    real, fake = discriminator_inputs(run.discriminator, a, b, detail, fused.detach())
    total = 0.0
    for inputs, loss_fn in ((real, real_loss), (fake, fake_loss)):
        with _autocast(run, autocast):
            logits = run.d_model(*inputs)
        loss = loss_fn(logits.float())
        loss.backward()
        total += float(loss.detach())
    run.opt_d.step()
    return total


def second_pass_terms(run: TrainingRun, a, b, fused, autocast: torch.dtype | None) -> dict:
    """{name: (lambda, value)} of the loss terms that run a network again, when their lambda is set:
    the equivariant-imaging term (the generator on a transformed pair) and the perceptual term (the frozen
    autoencoder's encoder on F, A and B); see ``losses_plus`` and ``perceptual``."""
    cfg, terms = run.config["loss"], {}
    if cfg.get("lambda_equivariance"):
        _, transform = draw_transform(cfg.get("equivariance_transforms"))

        def fuse(x, y):
            with _autocast(run, autocast):
                return run.g_model(x, y).float()

        terms["equivariance"] = (float(cfg["lambda_equivariance"]),
                                 equivariance_loss(fuse, a, b, fused.float(), transform))
    if cfg.get("lambda_perceptual"):
        from methods.densegan.perceptual import perceptual_term
        terms["perceptual"] = (float(cfg["lambda_perceptual"]), perceptual_term(cfg, fused.float(), a, b))
    return terms


def generator_step(run: TrainingRun, a, b, detail, fused, autocast: torch.dtype | None):
    """One G update through the frozen, unwrapped discriminator (no gradient sync for D in this step)."""
    run.discriminator.requires_grad_(False)          # restored below: D's own step trains it
    run.opt_g.zero_grad(set_to_none=True)
    with _autocast(run, autocast):
        fake_logits = run.discriminator(fused)
    loss_cfg = run.config["loss"]
    loss_g, terms = generator_loss(fused.float(), a, b, detail, fake_logits.float(), loss_cfg)
    for name, (weight, term) in second_pass_terms(run, a, b, fused, autocast).items():
        loss_g = loss_g + weight * term
        terms[name] = float(term.detach())
    loss_g.backward()
    run.opt_g.step()
    run.discriminator.requires_grad_(True)
    decay = run.config["train"].get("ema_decay")
    if run.ema is not None:
        update_ema(run.ema, run.generator, ema_decay_at(float(decay), run.step))
    return float(loss_g.detach()), terms


def train_epoch(run: TrainingRun, epoch: int) -> tuple[dict, list[dict]]:
    """One epoch of alternating D and G steps; returns (mean of every logged value, logged step rows)."""
    tc, cfg = run.config["train"], run.config
    autocast = autocast_dtype(str(tc.get("precision", "fp32")), run.device)
    run.sampler.set_epoch(epoch)
    run.data.set_epoch(epoch)
    run.seen.extend(list(run.sampler)[: run.steps_per_epoch * int(tc["batch_size"])])
    run.generator.train()
    run.discriminator.train()
    sums: dict[str, float] = {}
    rows: list[dict] = []
    t0 = time.perf_counter()
    from tqdm import tqdm
    # a bar on a terminal only: in a log file (campaigns, CI) the per-epoch summary line says the same
    bar = tqdm(zip(range(run.steps_per_epoch), run.loader), total=run.steps_per_epoch,
               disable=run.rank != 0 or not sys.stderr.isatty(),
               desc=f"{cfg.get('method', 'densegan')} epoch {epoch}/{tc['epochs']}", leave=False, dynamic_ncols=True)
    for _, (a, b, detail) in bar:
        factor = learning_rate_factor(cfg["optim"], run.step, run.total_steps)
        for opt, key in ((run.opt_g, "lr_g"), (run.opt_d, "lr_d")):
            for group in opt.param_groups:
                group["lr"] = float(cfg["optim"][key]) * factor
        a, b, detail = (x.to(run.device, memory_format=torch.channels_last) for x in (a, b, detail))
        with _autocast(run, autocast):
            fused = run.g_model(a, b)
        loss_d = discriminator_step(run, a, b, detail, fused, autocast)
        loss_g, terms = generator_step(run, a, b, detail, fused, autocast)
        run.step += 1
        values = {"loss_d": loss_d, "loss_g": loss_g, **terms,
                  **{f"share_{k}": v for k, v in weighted_shares(terms, cfg["loss"]).items()}}
        for k, v in values.items():
            sums[k] = sums.get(k, 0.0) + v
        bar.set_postfix({k: f"{v:.3g}" for k, v in values.items() if not k.startswith("share_")})
        if run.rank == 0 and run.step % int(tc.get("log_every", 10)) == 0:
            rows.append({"epoch": epoch, "step": run.step, **values, "lr_factor": round(factor, 6),
                         "seconds": round(time.perf_counter() - t0, 3)})
    return {k: v / run.steps_per_epoch for k, v in sums.items()}, rows


def validation_pairs(data_cfg: dict, datasets=None) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """``data.val_pairs`` pairs (evenly spaced) of each of ``data.val_datasets`` (resolved by ``datasets``, as
    for ``FusionPairs``), as (name, luma A, luma B)."""
    names = data_cfg.get("val_datasets") or []
    if isinstance(names, str):
        names = [n for n in names.split(",") if n]
    if not names:
        return []
    if datasets is None:
        raise UserError("training config: data.val_datasets names registry datasets, but no dataset registry "
                        "was given (train through python -m bench train)")
    per_dataset = int(data_cfg.get("val_pairs") or 0) or None
    out = []
    for name in names:
        pairs = datasets(name).pairs()
        if per_dataset and len(pairs) > per_dataset:
            pairs = [pairs[i] for i in np.linspace(0, len(pairs) - 1, per_dataset).round().astype(int)]
        for pair in pairs:
            a, b = (luma(x).astype(np.float32) for x in pair.load())
            out.append((f"{name}/{pair.name}", a, b))
    return out


def validation_scores(generator: Generator, pairs) -> dict[str, float]:
    """Mean of VALIDATION_METRICS over ``pairs`` (fp32 inference) and ``val_score`` = mean of (Qabf + VIF) / 2.

    ``val_score`` is the run's selection criterion: the best checkpoint is the epoch with the highest one.
    Qabf (edge transfer) and VIF (visual information) are the two metrics the project's targets name;
    both are in [0, 1] for ordinary fusions, so their mean weighs them alike.
    """
    from methods.densegan.inference import fuse_arrays

    return validation_means(lambda a, b: fuse_arrays(generator, a, b), pairs)


def validation_means(fuse, pairs) -> dict[str, float]:
    """Mean of VALIDATION_METRICS of ``fuse(a, b)`` over ``pairs`` and its ``val_score``: the scores of a
    generator (``validation_scores``) and of the baselines a campaign's report draws beside it."""
    import metrics as metric_registry

    rows = [metric_registry.compute(a, b, fuse(a, b), names=list(VALIDATION_METRICS)) for _, a, b in pairs]
    means = {m: float(np.nanmean([r[m] for r in rows])) for m in VALIDATION_METRICS}
    means["val_score"] = 0.5 * (means["Qabf"] + means["VIF"])
    return means


def plot_validation_curve(run_dir: Path) -> Path | None:
    """``val_curve.png``: every validation metric and ``val_score`` against the epoch."""
    rows = read_csv_rows(run_dir / "log_val.csv")
    if not rows:
        return None
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    epochs = [int(r["epoch"]) for r in rows]
    for key in (*VALIDATION_METRICS, "val_score"):
        if key != "MI":
            ax.plot(epochs, [float(r[key]) for r in rows], marker=".", label=key,
                    linewidth=2.5 if key == "val_score" else 1.2)
    best = max(rows, key=lambda r: float(r["val_score"]))
    ax.axvline(int(best["epoch"]), color="grey", linestyle=":", label=f"best epoch {best['epoch']}")
    return _save_figure(fig, ax, "epoch", "validation score", f"{run_dir.name}: validation ({len(rows)} epochs)",
                        run_dir / "val_curve.png")


def end_epoch(run: TrainingRun, epoch: int, means: dict, rows: list[dict], seconds: float, cpu: float,
              val_pairs) -> None:
    """Validate, log, and write the epoch checkpoint (rank 0). The state file is written last: its presence
    marks the epoch complete, so a run killed before it redoes the epoch (and rewrites what it had logged)."""
    run.cpu_seconds += cpu
    out, samples = run.out_dir, run.step * run.samples_per_step
    val = validation_scores(run.inference_generator, val_pairs) if val_pairs else {}
    common = {"epoch": epoch, "step": run.step, "samples": samples, "seconds": round(seconds, 3),
              "cpu_seconds": round(run.cpu_seconds, 3)}
    _append_rows(out / "log_steps.csv", rows)
    _append_rows(out / "log_epochs.csv", [{**common, **means}])
    if val:
        _append_rows(out / "log_val.csv", [{**common, **{k: round(v, 6) for k, v in val.items()}}])
        if val["val_score"] > run.best_score:
            run.best_score, run.best_epoch = val["val_score"], epoch
            save_generator(copy.deepcopy(run.inference_generator).cpu(), out / "best.safetensors",
                           {"method": str(run.config.get("method", "densegan")), "epoch": str(epoch),
                            "steps": str(run.step), "samples": str(samples), "select_by": "val_score",
                            "val_score": f"{val['val_score']:.6f}"})
        plot_validation_curve(out)
    if run.config["train"].get("keep_generators", False):
        save_generator(copy.deepcopy(run.inference_generator).cpu(), epoch_generator_path(out, epoch),
                       {"method": str(run.config.get("method", "densegan")), "epoch": str(epoch),
                        "steps": str(run.step), "samples": str(samples)})
    gen_cfg = run.generator.config
    weights_path, state_path = checkpoint_paths(out, epoch)
    tensors = {**prefixed(run.generator, "generator"), **prefixed(run.discriminator, "discriminator")}
    if run.ema is not None:
        tensors.update(prefixed(run.ema, "ema"))
    save_weights(tensors, weights_path, {"generator_config": json.dumps(gen_cfg.to_dict()), "epoch": str(epoch)})
    save_state({"epoch": epoch, "step": run.step, "rng": _rng_state(run.device), "opt_g": run.opt_g.state_dict(),
                "opt_d": run.opt_d.state_dict(), "best_score": run.best_score, "best_epoch": run.best_epoch,
                "cpu_seconds": run.cpu_seconds}, state_path)
    if not run.config["train"].get("keep_checkpoints", True):
        for old in completed_epochs(out)[:-1]:
            for p in checkpoint_paths(out, old):
                p.unlink(missing_ok=True)
    plot_loss_curve(out)
    shown = {k: v for k, v in means.items() if not k.startswith("share_")}
    print(f"epoch {epoch}/{run.config['train']['epochs']}: " + ", ".join(f"{k} {v:.4g}" for k, v in shown.items())
          + (f"; val_score {val['val_score']:.4f} (best {run.best_score:.4f}, epoch {run.best_epoch})" if val else "")
          + f" ({seconds:.1f} s, {run.steps_per_epoch * run.samples_per_step / max(seconds, 1e-9):.1f} samples/s"
          + (f", ETA {_eta(seconds * (int(run.config['train']['epochs']) - epoch))}"
             if epoch < int(run.config["train"]["epochs"]) else "") + ")",
          file=sys.stderr)


def _eta(seconds: float) -> str:
    """Remaining time at this epoch's pace, as '1 h 05 min' or '4 min'."""
    minutes = int(round(seconds / 60))
    return f"{minutes // 60} h {minutes % 60:02d} min" if minutes >= 60 else f"{minutes} min"


def _append_rows(path: Path, rows: list[dict]) -> None:
    if rows:
        old = read_csv_rows(path)
        fields = list(dict.fromkeys([*(old[0] if old else {}), *rows[0]]))
        write_csv_rows(path, old + rows, fields)


def _fit(config: dict, out_dir: Path, resume: bool, datasets=None):
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
    run = None
    try:
        run = start_run(config, Path(out_dir), resume, datasets)
        val_pairs = validation_pairs(config["data"], datasets) if rank == 0 else []
        epochs = int(tc["epochs"])
        for epoch in range(run.start_epoch + 1, epochs + 1):
            t0, c0 = time.perf_counter(), time.process_time()
            means, rows = train_epoch(run, epoch)
            if rank == 0:
                end_epoch(run, epoch, means, rows, time.perf_counter() - t0, time.process_time() - c0, val_pairs)
            if world > 1:
                dist.barrier()
        final = None
        if rank == 0:
            final = save_generator(copy.deepcopy(run.inference_generator).cpu(), run.out_dir / "generator.safetensors",
                                   {"method": str(config.get("method", "densegan")), "epochs": str(epochs),
                                    "steps": str(run.step), "samples": str(run.step * run.samples_per_step)})
        return final, run.generator, run.seen
    finally:
        torch.set_num_threads(saved_threads)
        torch.use_deterministic_algorithms(saved_deterministic[0], warn_only=saved_deterministic[1])
        if own_group:
            # Free DDP's reducers while the group is still registered. A reducer holds the group in C++;
            # were its dealloc to drop the last reference, Gloo's destructor would join its worker thread
            # with the GIL held while that thread waits for the GIL to free its last (barrier) work:
            # a deadlock, seen once at the end of test_two_process_ddp_step in the full test run.
            run = None
            gc.collect()
            dist.destroy_process_group()


def train(config: dict, out_dir: Path, resume: bool = False, datasets=None) -> Path:
    """Train G and D per ``config`` into ``out_dir``; returns the final generator's safetensors path.

    Parameters
    ----------
    config : dict
        A resolved config (``resolve_config``): sections model, discriminator, loss, optim, data, train.
    out_dir : Path
        The run folder (created); refuses to overwrite checkpoints unless ``resume``.
    resume : bool
        Continue from the last epoch whose weights and state are both present.
    datasets : callable, optional
        ``name -> dataset`` for the config's ``data.datasets`` and ``data.val_datasets`` (bench's
        ``Registry().dataset``); not needed for ``data.synthetic`` pairs.

    Returns
    -------
    Path
        ``out_dir/generator.safetensors`` (on non-zero ranks: the path rank 0 writes).
    """
    final, _, _ = _fit(config, out_dir, resume, datasets)
    return final or Path(out_dir) / "generator.safetensors"
