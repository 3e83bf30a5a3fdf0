"""Issue #6 ablation study of the dense-block GAN: seed vs each single option vs the best combination.

    nice -n 10 python -m bench.studies.plus            # train, evaluate, write reports/plus_study/

Every variant is the seed config (methods/configs/densegan.yaml, ``cpu`` profile) plus ``--set``-style
overrides, trained with one short schedule (``--epochs`` x ``--steps`` steps, ``--patch`` pixels; the same
for every row, so rows differ only by the option) on the Harvard case-wise train parts, then scored on
the three Harvard case-wise validation parts (never a test split: the choice is made here) and the
phantom CT/PET/SPECT-MRI datasets with the eight headline metrics and STC (metrics on Y). The
combination row is chosen from the single-option rows (best fusion rule, best discriminator option and
every loss term that beat the seed on most headline cells) and trained the same way. Classical
baselines are scored beside them. Significance: two-sided Wilcoxon signed-rank test, paired by image,
of each row against the seed row (p < 0.05 marked). Everything is cached under ``--runs`` (a finished
variant or score file is reused), so a killed study continues where it stopped.
"""
from __future__ import annotations

import argparse
import html
import json
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from bench.datasets import REPO, Registry
from bench.scoring import score_fusers
from common.errors import UserError, report_user_error
from metrics.sets import HEADLINE

# choices are made on the case-wise validation parts; the study never scores a test split (issue #15)
HARVARD = ("harvard_ct_mri_val", "harvard_pet_mri_val", "harvard_spect_mri_val")
TRAINING = ("harvard_ct_mri_casewise_train", "harvard_pet_mri_casewise_train", "harvard_spect_mri_casewise_train")
PHANTOMS = ("phantom_ct_mri", "phantom_pet_mri", "phantom_spect_mri")
METRICS = (*HEADLINE, "STC")
BASELINES = ("average", "max", "dwt", "llf_ioi", "nsst_papcnn")

# name -> (group, overrides of the seed config). Groups: one choice per group goes into the combination.
SINGLE_CHANGES = {
    "l1-softmax": ("fusion", ["model.fusion_rule=l1-softmax"]),
    "nestfuse": ("fusion", ["model.fusion_rule=nestfuse"]),
    "local-energy": ("fusion", ["model.fusion_rule=local-energy"]),
    "dual-d": ("discriminator", ["discriminator.dual=true"]),
    "patchgan": ("discriminator", ["discriminator.kind=patchgan"]),
    # spectral norm replaces batch norm (the two fight: BN rescales what SN bounds)
    "spectral-norm": ("discriminator", ["discriminator.spectral_norm=true", "discriminator.batch_norm=false"]),
    "gradient-d": ("discriminator", ["discriminator.kind=gradient"]),
    "local-bc": ("loss", ["loss.lambda_local_int=10.0", "loss.lambda_local_contrast=5.0", "loss.lambda_int=0.0"]),
    "texture": ("loss", ["loss.lambda_texture=5.0"]),
    "freq": ("loss", ["loss.lambda_freq=2.0"]),
}


# ----------------------------------------------------------------------------------------- training

def schedule_overrides(args) -> list[str]:
    return [f"data.datasets=[{', '.join(TRAINING)}]", "data.val_datasets=[]",
            f"data.patch_size={args.patch}", f"train.epochs={args.epochs}",
            f"train.max_steps_per_epoch={args.steps}", "train.threads=1", "train.keep_checkpoints=false"]


def train_variant(name: str, overrides: list[str], args) -> tuple[Path, float]:
    """Train (or reuse) one variant; returns (generator path, training wall seconds)."""
    from bench.training import registry_datasets
    from methods.densegan.train import completed_epochs, resolve_config, train

    run = args.runs / name
    final = run / "generator.safetensors"
    timing = run / "wall_seconds.txt"
    if final.is_file() and timing.is_file():
        return final, float(timing.read_text())
    config = resolve_config("densegan", profile="cpu", overrides=[*schedule_overrides(args), *overrides])
    config["method"] = f"plus-study-{name}"
    start = time.perf_counter()
    train(config, run, resume=bool(completed_epochs(run)) if run.exists() else False, datasets=registry_datasets)
    seconds = time.perf_counter() - start
    timing.write_text(f"{seconds:.1f}\n")
    (run / "overrides.json").write_text(json.dumps(overrides))
    return final, seconds


# ----------------------------------------------------------------------------------------- scoring

def score(label: str, fuse_fn, datasets, args) -> pd.DataFrame:
    """Per-pair metrics of ``fuse_fn(a, b)`` on ``datasets`` (cached in runs/<label>/scores.csv)."""
    cache = args.runs / "scores" / f"{label}.csv"
    if cache.is_file():
        return pd.read_csv(cache)
    frame = score_fusers({label: fuse_fn}, datasets, list(METRICS), limit=args.limit, label="variant")
    cache.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(cache, index=False)
    return frame


def generator_fuser(path: Path):
    import methods
    return lambda a, b: methods.fuse(a, b, "densegan", weights=str(path))


def method_fuser(name: str):
    import methods
    return lambda a, b: methods.fuse(a, b, name)


# ----------------------------------------------------------------------------------------- analysis

def wins_against(frame: pd.DataFrame, variant: str, reference: str = "seed") -> int:
    """Headline (dataset, metric) cells of the selection parts where ``variant``'s mean beats ``reference``
    (``analysis.better``: each metric's own direction)."""
    from bench.analysis import better

    means = frame[frame.dataset.isin(HARVARD)].groupby(["variant", "dataset"])[list(HEADLINE)].mean()
    return sum(better(m, means.loc[(variant, d), m], means.loc[(reference, d), m])
               for d in means.loc[variant].index for m in HEADLINE)


def harmful(frame: pd.DataFrame, variant: str, reference: str = "seed", tolerance: float = 0.10) -> list[str]:
    """Headline cells (Harvard) where ``variant``'s mean is worse than the seed's by more than ``tolerance``."""
    from metrics import get_metric

    means = frame[frame.dataset.isin(HARVARD)].groupby(["variant", "dataset"])[list(HEADLINE)].mean()
    bad = []
    for dataset in HARVARD:
        for metric in HEADLINE:
            ours, seed = means.loc[(variant, dataset), metric], means.loc[(reference, dataset), metric]
            sign = 1.0 if get_metric(metric).higher_is_better else -1.0
            if sign * (ours - seed) < -tolerance * abs(seed):
                bad.append(f"{dataset}:{metric}")
    return bad


def choose_combination(frame: pd.DataFrame, guard: bool = True) -> tuple[list[str], list[str]]:
    """Best option per group (fusion, discriminator) and every loss term that beats the seed on most cells.

    A change qualifies when it beats the seed on more than half of the 24 Harvard headline cells and,
    with ``guard``, loses no headline cell by more than 10 % (so a change that wins on sharpness while
    wrecking SSIM -- a lifted background after the short training -- is left out).
    """
    cells = len(HARVARD) * len(HEADLINE)
    present = set(frame.variant)

    def qualifies(name: str) -> bool:
        return wins_against(frame, name) > cells // 2 and not (guard and harmful(frame, name))

    chosen = []
    for group in ("fusion", "discriminator"):
        scored = [(wins_against(frame, n), n) for n, (g, _) in SINGLE_CHANGES.items()
                  if g == group and n in present and qualifies(n)]
        if scored:
            chosen.append(max(scored)[1])
    chosen += [n for n, (g, _) in SINGLE_CHANGES.items() if g == "loss" and n in present and qualifies(n)]
    if not chosen:       # nothing beat the seed on most cells: take the single change that came closest
        ranked = sorted((wins_against(frame, n), n) for n in SINGLE_CHANGES if n in present)
        chosen = [ranked[-1][1]] if ranked else []
    overrides = [o for n in chosen for o in SINGLE_CHANGES[n][1]]
    return chosen, overrides


def significance(frame: pd.DataFrame, variant: str, dataset: str, metric: str, reference: str = "seed") -> float:
    """Two-sided Wilcoxon signed-rank p-value, ``variant`` vs ``reference`` paired by image (NaN pairs dropped;
    at least 5 pairs)."""
    from bench.analysis import paired_wilcoxon

    sub = frame[frame.dataset == dataset].pivot_table(index="pair", columns="variant", values=metric)
    if variant not in sub or reference not in sub:
        return float("nan")
    pair = sub[[variant, reference]].dropna()
    return paired_wilcoxon(pair[variant], pair[reference], min_pairs=5)


def table(frame: pd.DataFrame, dataset: str, rows: list[str]) -> pd.DataFrame:
    """mean ± std per (row, metric); vs the seed: '+' / '-' = significantly better / worse (p < 0.05)."""
    from metrics import get_metric

    sub = frame[frame.dataset == dataset]
    out = []
    for variant in rows:
        v = sub[sub.variant == variant]
        if v.empty:
            continue
        cells = {"variant": variant}
        for metric in METRICS:
            values = v[metric].dropna()
            text = f"{values.mean():.4f} ± {values.std(ddof=1):.4f}" if len(values) else "n/a"
            if variant != "seed":
                p = significance(frame, variant, dataset, metric)
                if p < 0.05:
                    better = (values.mean() > sub[sub.variant == "seed"][metric].mean()) == \
                        get_metric(metric).higher_is_better
                    text += " ▲" if better else " ▼"
            cells[metric] = text
        out.append(cells)
    return pd.DataFrame(out)


def markdown(frame: pd.DataFrame) -> str:
    lines = ["| " + " | ".join(frame.columns) + " |", "|" + "---|" * len(frame.columns)]
    return "\n".join(lines + ["| " + " | ".join(str(v) for v in row) + " |" for row in frame.itertuples(index=False)])


def target_check(frame: pd.DataFrame, best: str, baselines: list[str]) -> list[str]:
    """The issue's targets, one line each, with the numbers."""
    lines = []
    means = frame.groupby(["variant", "dataset"])[list(HEADLINE)].mean()
    for dataset in HARVARD:
        if (best, dataset) not in means.index or ("seed", dataset) not in means.index:
            continue
        beats = [m for m in HEADLINE if means.loc[(best, dataset), m] > means.loc[("seed", dataset), m]]
        lines.append(f"{dataset}: {best} beats seed on {len(beats)}/8 headline metrics ({', '.join(beats) or '-'}) "
                     f"-> {'MET' if len(beats) >= 6 else 'MISSED'}")
        for metric in ("Qabf", "VIF"):
            ours = means.loc[(best, dataset), metric]
            better = [b for b in baselines if (b, dataset) in means.index and means.loc[(b, dataset), metric] >= ours]
            lines.append(f"{dataset}: {metric} {best} {ours:.4f}; baselines at or above it: "
                         f"{', '.join(f'{b} {means.loc[(b, dataset), metric]:.4f}' for b in better) or 'none'} "
                         f"-> {'MET' if not better else 'MISSED'}")
    return lines


# ----------------------------------------------------------------------------------------- figures

def figure_grid(rows: dict[str, Path], pairs: list[tuple[str, str]], out: Path, boxes) -> Path:
    """Rows: sources + every variant; columns: one pair per dataset; zoomed inset per panel."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    import methods
    from bench.report import show_with_inset

    registry = Registry()
    loaded = []
    for dataset, name in pairs:
        pair = next(p for p in registry.dataset(dataset, announce=False).pairs() if p.name == name)
        loaded.append(pair.load())
    labels = ["source A", "source B", *rows]
    fig, axes = plt.subplots(len(labels), len(pairs), figsize=(2.3 * len(pairs), 2.3 * len(labels)), squeeze=False)
    for j, ((a, b), box) in enumerate(zip(loaded, boxes)):
        images = [a, b] + [methods.fuse(a, b, "densegan", weights=str(p)) for p in rows.values()]
        for i, (label, image) in enumerate(zip(labels, images)):
            show_with_inset(axes[i][j], image, box, f"{pairs[j][0]} {pairs[j][1]}" if i == 0 else None,
                            label if j == 0 else None)
    fig.tight_layout()
    fig.savefig(out, dpi=48)
    plt.close(fig)
    return out


def figure_soft_tissue(frame: pd.DataFrame, seed: Path, best: Path, best_label: str, out: Path) -> Path:
    """The poor case: the CT-MRI pair whose CT is brightest inside the brain region, before/after, zoomed."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from scipy import ndimage

    import methods
    from metrics.soft_tissue import brain_mask

    def ct_brightness_in_brain(pair) -> float:
        a, b = pair.load()
        mask = brain_mask(a, b)
        return float(a[mask].mean()) if mask.sum() > 0.01 * mask.size else -1.0

    pair = max(Registry().dataset("harvard_ct_mri_val", announce=False).pairs(), key=ct_brightness_in_brain)
    name = pair.name
    a, b = pair.load()
    mask = brain_mask(a, b)
    cy, cx = (int(c) for c in ndimage.center_of_mass(mask))
    s = 80
    y0, x0 = max(0, cy - s // 2), max(0, cx - s // 2)
    fused_seed = methods.fuse(a, b, "densegan", weights=str(seed))
    fused_best = methods.fuse(a, b, "densegan", weights=str(best))
    score = lambda f: frame[(frame.pair.astype(str) == str(name)) & (frame.dataset == "harvard_ct_mri_val") & (frame.variant == f)]["STC"]  # noqa: E731
    panels = [("CT (A)", a), ("MRI (B)", b), (f"seed  STC {float(score('seed').iloc[0]):.3f}", fused_seed),
              (f"{best_label}  STC {float(score(best_label).iloc[0]):.3f}", fused_best)]
    fig, axes = plt.subplots(2, 4, figsize=(11, 5.6))
    for k, (title, image) in enumerate(panels):
        axes[0][k].imshow(image, cmap="gray", vmin=0, vmax=1)
        axes[0][k].contour(mask, levels=[0.5], colors="cyan", linewidths=0.5)
        axes[0][k].set_title(title, fontsize=9)
        axes[1][k].imshow(image[y0:y0 + s, x0:x0 + s], cmap="gray", vmin=0, vmax=1, interpolation="nearest")
        axes[1][k].set_title("zoom inside the brain", fontsize=8)
        for ax in (axes[0][k], axes[1][k]):
            ax.set_xticks([])
            ax.set_yticks([])
    fig.suptitle(f"harvard_ct_mri_val {name}: bright CT over MRI soft tissue (cyan: STC brain region)", fontsize=10)
    fig.tight_layout()
    fig.savefig(out, dpi=80)
    plt.close(fig)
    return out


def figure_colour(seed: Path, best: Path, best_label: str, out: Path) -> Path:
    """PET/SPECT colour fidelity: functional source vs fused RGB, and the hue difference."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.colors import rgb_to_hsv

    import methods
    registry = Registry()
    fig, axes = plt.subplots(2, 5, figsize=(13, 5.6))
    for row, dataset in enumerate(("harvard_pet_mri_val", "harvard_spect_mri_val")):
        pair = registry.dataset(dataset, announce=False).pairs()[0]
        a, b = pair.load()
        colour, grey = (a, b) if a.ndim == 3 else (b, a)
        fused = {"seed": methods.fuse(a, b, "densegan", weights=str(seed)),
                 best_label: methods.fuse(a, b, "densegan", weights=str(best))}
        hue_src = rgb_to_hsv(np.clip(colour, 0, 1))[..., 0]
        sat = rgb_to_hsv(np.clip(colour, 0, 1))[..., 1] > 0.2
        panels = [(f"{dataset.split('_')[1].upper()} source", colour), ("MRI", grey)]
        panels += [(label, img) for label, img in fused.items()]
        for k, (title, image) in enumerate(panels):
            axes[row][k].imshow(image, cmap=None if image.ndim == 3 else "gray", vmin=0, vmax=1)
            axes[row][k].set_title(title, fontsize=9)
        diffs = []
        for label, img in fused.items():
            hue = rgb_to_hsv(np.clip(img, 0, 1))[..., 0]
            d = np.abs(hue - hue_src)
            diffs.append((label, float(np.minimum(d, 1 - d)[sat].mean())))
        error = np.abs(rgb_to_hsv(np.clip(fused[best_label], 0, 1))[..., 0] - hue_src)
        axes[row][4].imshow(np.where(sat, np.minimum(error, 1 - error), 0), cmap="magma", vmin=0, vmax=0.25)
        axes[row][4].set_title("hue error " + ", ".join(f"{l} {v:.3f}" for l, v in diffs), fontsize=7)
        for ax in axes[row]:
            ax.set_xticks([])
            ax.set_yticks([])
    fig.suptitle("colour fidelity: hue of the fused RGB vs the functional source (saturated pixels)", fontsize=10)
    fig.tight_layout()
    fig.savefig(out, dpi=80)
    plt.close(fig)
    return out


def figure_noise_demo(out: Path) -> Path:
    """Fused-feature noise of Lmax vs local-energy vs mean for equal signal + independent noise."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import torch

    from methods.densegan.fusion_rules import FUSION_RULES
    import methods.densegan.rules_plus  # noqa: F401  (registers the rules)

    settings = [(0.3, 0.3), (0.0, 0.3), (0.1, 0.5), (0.5, 0.5)]
    rules = ("lmax", "l1", "mean", "local-energy")
    g = torch.Generator().manual_seed(0)
    size, channels = 48, 16
    y = torch.linspace(0, 1, size)
    signal = torch.relu(torch.randn(1, channels, 1, 1, generator=g)) * \
        (0.5 + 0.5 * torch.sin(6 * y))[None, None, :, None].expand(1, channels, size, size)
    results = {r: [] for r in rules}
    for sa, sb in settings:
        na = sa * torch.randn(1, channels, size, size, generator=g)
        nb = sb * torch.randn(1, channels, size, size, generator=g)
        for r in rules:
            results[r].append(float(((FUSION_RULES[r]([signal + na, signal + nb]) - signal) ** 2).mean()))
    fig, ax = plt.subplots(figsize=(7, 3.2))
    width = 0.2
    for k, r in enumerate(rules):
        ax.bar(np.arange(len(settings)) + k * width, results[r], width, label=r)
    ax.set_xticks(np.arange(len(settings)) + 1.5 * width)
    ax.set_xticklabels([f"noise A {a}, B {b}" for a, b in settings], fontsize=8)
    ax.set_ylabel("residual noise power of fused features")
    ax.legend(fontsize=8)
    ax.set_title("equal signal + independent feature noise: Lmax follows the noise peaks", fontsize=9)
    fig.tight_layout()
    fig.savefig(out, dpi=90)
    plt.close(fig)
    return out


# ----------------------------------------------------------------------------------------- report

def write_report(frame: pd.DataFrame, variants: dict[str, dict], baselines: list[str], best: str,
                 combination: list[str], args, figures: list[Path]) -> None:
    out = args.report
    out.mkdir(parents=True, exist_ok=True)
    order = ["seed", *[v for v in variants if v != "seed"]]
    md = [f"# Issue #6 ablation study of the dense-block GAN", "",
          f"Command: `nice -n 10 python -m bench.studies.plus --epochs {args.epochs} --steps {args.steps} "
          f"--patch {args.patch}{' --limit ' + str(args.limit) if args.limit else ''}`", "",
          f"Every row: seed config (`methods/configs/densegan.yaml`, cpu profile) + its overrides, trained "
          f"{args.epochs} x {args.steps} steps (batch 4, {args.patch}x{args.patch} patches, 1 thread, seed 0) on the "
          f"three Harvard train splits. Scores: mean ± std over the test pairs, metrics on Y; ▲/▼ = significantly "
          f"better/worse than the seed row (two-sided Wilcoxon signed-rank, paired by image, p < 0.05). "
          f"STC = MRI soft-tissue contrast kept inside the brain (metrics/soft_tissue.py; meaningful on CT-MRI).", "",
          f"Combination chosen from the single-option rows: **{' + '.join(combination) or 'none'}** -> row `{best}` "
          f"(rule: best fusion rule and best discriminator option, plus every loss term, among the changes that beat "
          f"the seed on more than 12 of the 24 Harvard headline cells and lose none by more than 10 %; row "
          f"`all-winners`, if present, drops the 10 % guard).", "",
          "## Variants", "", "| variant | overrides | train wall s |", "|---|---|---|"]
    for name, info in variants.items():
        shown = "; ".join(info["overrides"]).replace(str(REPO) + "/", "")     # repo-relative paths
        md.append(f"| {name} | {shown or '(seed)'} | {info['seconds']:.0f} |")
    md += ["", "## Targets", ""] + [f"* {line}" for line in target_check(frame, best, baselines)]
    for dataset in (*HARVARD, *PHANTOMS):
        if dataset not in set(frame.dataset):
            continue
        md += ["", f"## {dataset}", "", markdown(table(frame, dataset, order + baselines))]
    md += ["", "## Wins against the seed (Harvard, 24 headline cells)", "", "| variant | cells better than seed |",
           "|---|---|"]
    md += [f"| {v} | {wins_against(frame, v)} |" for v in order[1:] if v in set(frame.variant)]
    md += ["", "## Figures", ""] + [f"![{f.stem}]({f.name})" for f in figures]
    text = "\n".join(md) + "\n"
    (out / "tables.md").write_text(text)
    body = [f"<h1>Issue #6 ablation study of the dense-block GAN</h1>",
            f"<p>Full tables: <a href='tables.md'>tables.md</a>.</p>"]
    for line in md:
        if line.startswith("## "):
            body.append(f"<h2>{html.escape(line[3:])}</h2>")
        elif line.startswith("* "):
            body.append(f"<p>{html.escape(line[2:])}</p>")
    for dataset in (*HARVARD, *PHANTOMS):
        if dataset in set(frame.dataset):
            body.append(f"<h3>{dataset}</h3>" + table(frame, dataset, order + baselines).to_html(index=False))
    body += [f"<h3>{f.stem}</h3><img src='{f.name}' style='max-width:100%'>" for f in figures]
    (out / "index.html").write_text("<!doctype html><meta charset='utf-8'><title>plus study</title>"
                                    "<style>body{font-family:sans-serif} td,th{font-size:11px;padding:2px 4px}</style>"
                                    + "\n".join(body))
    frame.to_csv(args.runs / "all_scores.csv", index=False)


def shipped_comparison(args, datasets) -> int:
    """The shipped generators (methods/weights/densegan{,-plus}.safetensors, both cpu profile) side by side."""
    baselines = [b for b in args.baselines.split(",") if b]
    frames = [score(name, method_fuser(name), datasets, args) for name in ("densegan", "densegan-plus", *baselines)]
    frame = pd.concat(frames, ignore_index=True)
    frame["variant"] = frame["variant"].replace({"densegan": "seed"})     # the reference row of ``table``
    lines = ["# Shipped densegan (seed, cpu profile) vs densegan-plus (cpu profile)", "",
             "Command: `nice -n 10 python -m bench.studies.plus --shipped`. Rows: mean ± std over the test pairs, "
             "metrics on Y; ▲/▼ = significantly better/worse than `seed` = the shipped `densegan` "
             "(Wilcoxon signed-rank, paired by image, p < 0.05).", "", "## Targets", ""]
    lines += [f"* {line}" for line in target_check(frame, "densegan-plus", baselines)]
    for dataset in datasets:
        lines += ["", f"## {dataset}", "", markdown(table(frame, dataset, ["seed", "densegan-plus", *baselines]))]
    speed = frame.groupby("variant")["seconds"].mean()
    lines += ["", "Mean fusion seconds per pair (this machine, shared CPU): "
              + ", ".join(f"{k} {v:.2f}" for k, v in speed.items())]
    args.report.mkdir(parents=True, exist_ok=True)
    from methods.densegan import WEIGHTS_DIR
    seed_w, plus_w = WEIGHTS_DIR / "densegan.safetensors", WEIGHTS_DIR / "densegan-plus.safetensors"
    figures = [figure_soft_tissue(frame, seed_w, plus_w, "densegan-plus", args.report / "shipped_soft_tissue_zoom.png"),
               figure_colour(seed_w, plus_w, "densegan-plus", args.report / "shipped_colour_fidelity.png")]
    lines += ["", "Figures (left/`seed` = shipped densegan):", ""] + [f"![{f.stem}]({f.name})" for f in figures]
    (args.report / "shipped.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.studies.plus", description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--steps", type=int, default=60, help="steps per epoch (batch 4)")
    parser.add_argument("--patch", type=int, default=96)
    parser.add_argument("--limit", type=int, default=None, help="only the first N test pairs per dataset")
    parser.add_argument("--runs", type=Path, default=REPO / "runs" / "plus_study")
    parser.add_argument("--report", type=Path, default=REPO / "reports" / "plus_study")
    parser.add_argument("--only", help="comma-separated single changes to run (default: all)")
    parser.add_argument("--baselines", default=",".join(BASELINES))
    parser.add_argument("--no-rfn", dest="rfn", action="store_false",
                        help="skip the RFN-Nest learned-fusion row (stage 2 on the seed's encoder/decoder)")
    parser.add_argument("--no-phantoms", action="store_true")
    parser.add_argument("--shipped", action="store_true",
                        help="instead: shipped densegan vs densegan-plus (+ baselines) -> reports/plus_study/shipped.md")
    parser.add_argument("--baselines-only", action="store_true",
                        help="only score the baselines (fills the cache; lets a second process run them)")
    args = parser.parse_args(argv)
    import warnings
    from metrics._filters import MetricWarning
    warnings.simplefilter("ignore", MetricWarning)     # STC is NaN on pairs without a skull (phantoms)
    datasets = HARVARD if args.no_phantoms else (*HARVARD, *PHANTOMS)
    singles = {n: v for n, v in SINGLE_CHANGES.items() if not args.only or n in args.only.split(",")}
    try:
        if args.shipped:
            return shipped_comparison(args, datasets)
        if args.baselines_only:
            for name in (b for b in args.baselines.split(",") if b):
                score(name, method_fuser(name), datasets, args)
            return 0
        variants: dict[str, dict] = {}
        frames = []

        def run(name, overrides):
            path, seconds = train_variant(name, overrides, args)
            variants[name] = {"overrides": overrides, "seconds": seconds, "path": path}
            frames.append(score(name, generator_fuser(path), datasets, args))
            print(f"{name}: trained in {seconds:.0f} s, scored", file=sys.stderr)

        run("seed", [])
        for name, (_, overrides) in singles.items():
            run(name, overrides)
        if args.rfn:
            seed_path = variants["seed"]["path"]
            run("rfn", ["model.fusion_rule=rfn", f"train.init_from={seed_path}", "train.freeze=[encoder, decoder]"])
        frame = pd.concat(frames, ignore_index=True)
        combination, overrides = choose_combination(frame)
        best = "combination"
        run(best, overrides)
        # the same choice without the do-no-harm guard, to show what the guard saves
        unguarded, unguarded_overrides = choose_combination(frame, guard=False)
        if unguarded != combination:
            run("all-winners", unguarded_overrides)
        baselines = [b for b in args.baselines.split(",") if b]
        for name in baselines:
            frames.append(score(name, method_fuser(name), datasets, args))
        frame = pd.concat(frames, ignore_index=True)
        args.report.mkdir(parents=True, exist_ok=True)
        figures = [figure_noise_demo(args.report / "noise_demo.png")]
        figure_rows = {"seed": variants["seed"]["path"], **{n: v["path"] for n, v in variants.items() if n != "seed"}}
        boxes = [(100, 90, 64), (100, 90, 64), (100, 90, 64)]
        picks = [(d, Registry().dataset(d, announce=False).pairs()[0].name) for d in HARVARD]
        figures.append(figure_grid(figure_rows, picks, args.report / "grid.png", boxes))
        figures.append(figure_soft_tissue(frame, variants["seed"]["path"], variants[best]["path"], best,
                                          args.report / "soft_tissue_zoom.png"))
        figures.append(figure_colour(variants["seed"]["path"], variants[best]["path"], best,
                                     args.report / "colour_fidelity.png"))
        write_report(frame, variants, baselines, best, combination, args, figures)
        (args.report / "combination.json").write_text(json.dumps({"changes": combination, "overrides": overrides},
                                                                 indent=1))
        print("\n".join(target_check(frame, best, baselines)))
        print(f"report: {args.report / 'index.html'}")
    except UserError as exc:
        return report_user_error(exc)
    return 0


if __name__ == "__main__":
    sys.exit(main())
