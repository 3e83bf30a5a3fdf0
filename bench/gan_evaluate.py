"""Scores of trained generators: per-epoch checkpoints of a run, and shipped methods on test splits.

``python -m bench.gan_evaluate`` prints the mean of every metric per (dataset, method) on the
Harvard test splits -- the table in methods/weights/MODEL_CARD.md; ``--run DIR [--epochs 1,4]`` instead
scores every (or the listed) epoch checkpoint of a training run and writes ``metrics_vs_epoch.csv`` /
``metrics_vs_epoch.png`` (metric against epoch, one line per dataset) into it.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

from common.colour import luma
from bench.scoring import metric_columns, score_fusers
from common.errors import UserError, report_user_error

DEFAULT_DATASETS = ("harvard_ct_mri", "harvard_pet_mri", "harvard_spect_mri")
DEFAULT_METHODS = ("densegan", "densegan-nodense", "densegan-noloss", "densegan-noloss-nodense",
                   "densegan-lean", "average", "dwt")


def _load_dataset(dataset):
    from bench.datasets import Registry
    return Registry().dataset(dataset) if isinstance(dataset, str) else dataset


def evaluate_checkpoints(run_dir: Path, dataset, metrics=None, epochs=None, *, fusion_rule: str | None = None,
                         limit: int | None = None) -> pd.DataFrame:
    """Metrics of every (or the listed) epoch checkpoint of a training run on one dataset.

    Parameters
    ----------
    run_dir : Path
        A run folder of ``methods.densegan.train`` (``checkpoints/epoch_NNNN.safetensors``).
    dataset : str or bench.datasets.Dataset
        Registry name or dataset; colour sources are fused and scored on their BT.601 luma.
    metrics : list of str, optional
        Metric names for ``metrics.compute`` (default: all registered).
    epochs : list of int, optional
        Epochs to score (default: every checkpoint present).
    fusion_rule : str, optional
        Override the generator's fusion rule.
    limit : int, optional
        Only the first ``limit`` pairs.

    Returns
    -------
    pandas.DataFrame
        One row per (epoch, pair): ``epoch``, ``dataset``, ``pair`` and one column per metric.
    """
    from methods.densegan import fuse_with_generator
    from methods.densegan.train import checkpoint_paths, completed_epochs

    run_dir = Path(run_dir)
    available = completed_epochs(run_dir)
    if not available:
        raise UserError(f"{run_dir}: no epoch checkpoints (checkpoints/epoch_NNNN.safetensors)")
    wanted = list(epochs) if epochs else available
    missing = sorted(set(wanted) - set(available))
    if missing:
        raise UserError(f"{run_dir}: no checkpoint for epoch(s) {missing} (has {available})")

    def fuser(weights: Path):       # the generator fuses luma; fusion_rule None: the rule stored with the weights
        return lambda a, b: fuse_with_generator(luma(a), luma(b), weights, fusion_rule)
    fusers = {epoch: fuser(checkpoint_paths(run_dir, epoch)[0]) for epoch in wanted}
    return score_fusers(fusers, [_load_dataset(dataset)], metrics, limit=limit, label="epoch")


def plot_metric_vs_epoch(frame: pd.DataFrame, out_path: Path, metrics=None) -> Path:
    """One panel per metric: mean (and min-max band) over pairs against the epoch, one line per dataset."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(metrics or metric_columns(frame))
    fig, axes = plt.subplots(1, len(names), figsize=(3.2 * len(names), 3), squeeze=False)
    for ax, metric in zip(axes[0], names):
        for dataset, group in frame.groupby("dataset"):
            stats = group.groupby("epoch")[metric].agg(["mean", "min", "max"])
            ax.plot(stats.index, stats["mean"], marker="o", label=dataset)
            ax.fill_between(stats.index, stats["min"], stats["max"], alpha=0.15)
        ax.set_title(metric)
        ax.set_xlabel("epoch")
    axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    out_path = Path(out_path)
    fig.savefig(out_path, dpi=100)
    plt.close(fig)
    return out_path


def parse_method_spec(spec: str) -> tuple[str, dict]:
    """``"densegan[fusion_rule=max;weights=runs/x]"`` -> ``("densegan", {"fusion_rule": "max", ...})``.

    The bracket form matches the labels of bench/sweeps.py; ``;`` separates parameters (``,`` separates
    methods on the command line). Values are parsed as YAML scalars.
    """
    import yaml

    name, sep, rest = spec.partition("[")
    if not sep:
        return spec, {}
    if not rest.endswith("]"):
        raise UserError(f"method spec {spec!r}: expected name[key=value;...]")
    params = {}
    for item in filter(None, rest[:-1].split(";")):
        key, eq, value = item.partition("=")
        if not eq:
            raise UserError(f"method spec {spec!r}: {item!r} is not key=value")
        params[key.strip()] = yaml.safe_load(value)
    return name, params


def evaluate_methods(methods=DEFAULT_METHODS, datasets=DEFAULT_DATASETS, metrics=None,
                     limit: int | None = None) -> pd.DataFrame:
    """Per-pair metrics of registered methods (``methods.fuse``, colour handled there) on datasets.

    ``methods`` holds names or specs with parameters, ``densegan[fusion_rule=max]`` (``parse_method_spec``).
    """
    from methods import fuse

    def fuser(name: str, params: dict):
        return lambda a, b: fuse(a, b, name, **params)
    fusers = {spec: fuser(*parse_method_spec(spec)) for spec in methods}
    return score_fusers(fusers, [_load_dataset(d) for d in datasets], metrics, limit=limit)


def wins(frame: pd.DataFrame, method: str, metrics=None) -> pd.DataFrame:
    """Per dataset and rival: on how many metrics ``method``'s mean is better (each metric's direction).

    Returns one row per (dataset, rival) with ``wins``, ``of`` and the metrics ``method`` loses on.
    """
    from bench.analysis import better

    names = list(metrics or metric_columns(frame))
    means = frame.groupby(["dataset", "method"], sort=False)[names].mean()
    rows = []
    for dataset in means.index.get_level_values(0).unique():
        mine = means.loc[(dataset, method)]
        for rival in means.loc[dataset].index:
            if rival == method:
                continue
            theirs = means.loc[(dataset, rival)]
            won = {m: better(m, mine[m], theirs[m]) for m in names}
            rows.append({"dataset": dataset, "rival": rival, "wins": sum(won.values()), "of": len(names),
                         "loses on": " ".join(m for m, w in won.items() if not w) or "-"})
    return pd.DataFrame(rows)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.gan_evaluate", description=__doc__.splitlines()[0])
    parser.add_argument("--methods", default=",".join(DEFAULT_METHODS))
    parser.add_argument("--datasets", default=",".join(DEFAULT_DATASETS))
    parser.add_argument("--metrics", default=None, help="comma-separated (default: all registered)")
    parser.add_argument("--limit", type=int, default=None, help="only the first N pairs per dataset")
    parser.add_argument("--run", type=Path, help="score the epoch checkpoints of this run folder instead")
    parser.add_argument("--epochs", default=None, help="with --run: comma-separated epochs (default: all present)")
    parser.add_argument("--csv", type=Path, help="also write the per-pair rows here")
    parser.add_argument("--from-csv", type=Path, nargs="+", help="tabulate earlier --csv files instead of fusing")
    parser.add_argument("--wins", metavar="METHOD", help="also count, per dataset, the metrics METHOD wins against each other method")
    args = parser.parse_args(argv)
    metrics = args.metrics.split(",") if args.metrics else None
    try:
        if args.run:
            epochs = [int(e) for e in args.epochs.split(",")] if args.epochs else None
            frames = [evaluate_checkpoints(args.run, d, metrics, epochs, limit=args.limit)
                      for d in args.datasets.split(",")]
            frame = pd.concat(frames, ignore_index=True)
            frame.to_csv(args.run / "metrics_vs_epoch.csv", index=False)
            plot_metric_vs_epoch(frame, args.run / "metrics_vs_epoch.png", metrics)
            table = frame.drop(columns="pair").groupby(["dataset", "epoch"]).mean()
        else:
            if args.from_csv:
                frame = pd.concat([pd.read_csv(p) for p in args.from_csv], ignore_index=True)
            else:
                frame = evaluate_methods(args.methods.split(","), args.datasets.split(","), metrics, args.limit)
            table = frame.drop(columns="pair").groupby(["dataset", "method"], sort=False).mean()
        if args.csv:
            frame.to_csv(args.csv, index=False)
    except UserError as exc:
        return report_user_error(exc)
    print(markdown_table(table.reset_index()))
    if args.wins and not args.run:
        print()
        print(markdown_table(wins(frame, args.wins, metrics)))
    return 0


def markdown_table(frame: pd.DataFrame, digits: int = 4) -> str:
    """A GitHub markdown table of a flat frame (floats to ``digits`` decimals), without tabulate."""
    cells = [[f"{v:.{digits}f}" if isinstance(v, float) else str(v) for v in row] for row in frame.itertuples(index=False)]
    lines = ["| " + " | ".join(map(str, frame.columns)) + " |", "|" + "---|" * len(frame.columns)]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in cells])


if __name__ == "__main__":
    sys.exit(main())
