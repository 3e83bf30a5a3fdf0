"""Guard against regressions in metric scores: compare a suite's mean scores with a committed baseline.

The baseline (``tests/baselines/<suite>.csv``: dataset, config, metric, value) holds the mean of each
metric over the suite's pairs. A check fails when a score moves by more than ``rtol`` (relative) +
``atol`` **in either direction**: a metric bug that inflates a score is as wrong as one that deflates it,
so the table of what moved says which way ("better"/"worse" by the metric's direction) but both fail.
The baseline changes only on purpose: ``--update`` rewrites it, and the commit says why.

Two guard suites: ``guard`` runs on the embedded phantom and needs no ``../shared`` (every clone and every
CI run has it); ``quick`` runs on real Harvard pairs where ``../shared`` exists.
"""
from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from bench.datasets import REPO
from common.errors import UserError
from common.io import write_text

BASELINE_DIR = REPO / "tests" / "baselines"


def suite_means(out: Path, metric_names: list[str]) -> pd.DataFrame:
    results = pd.read_csv(out / "results.csv")
    means = results.groupby(["dataset", "config"], sort=True)[metric_names].mean()
    return means.reset_index().melt(id_vars=["dataset", "config"], var_name="metric", value_name="value")


def compare(current: pd.DataFrame, baseline: pd.DataFrame, *, rtol: float, atol: float) -> list[str]:
    """Every score that moved beyond tolerance (either way), or is missing or new, as a readable line."""
    import metrics

    merged = baseline.merge(current, on=["dataset", "config", "metric"], how="outer",
                            suffixes=("_baseline", "_now"), indicator="side")
    moved = []
    for row in merged.itertuples():
        where = f"{row.dataset} / {row.config} / {row.metric}"
        if row.side == "left_only":
            moved.append(f"{where}: in the baseline ({row.value_baseline:.6g}) but not computed now")
            continue
        if row.side == "right_only":
            moved.append(f"{where}: new ({row.value_now:.6g}); not in the baseline (run with --update)")
            continue
        old, new = row.value_baseline, row.value_now
        if np.isnan(old) and np.isnan(new):
            continue
        if np.isnan(old) != np.isnan(new):
            moved.append(f"{where}: {old:.6g} -> {new:.6g}")
            continue
        delta = new - old
        if abs(delta) <= atol + rtol * abs(old):
            continue
        higher = metrics.get_metric(row.metric).higher_is_better
        worse = delta < 0 if higher else delta > 0
        moved.append(f"{where}: {old:.6g} -> {new:.6g} ({'+' if delta > 0 else ''}{delta:.3g}, "
                     f"{'worse' if worse else 'better'}; {'higher' if higher else 'lower'} is better)")
    return moved


def check_suite(suite: str, *, update: bool = False, data_root=None, rtol: float = 1e-4, atol: float = 1e-6,
                baseline_dir: Path = BASELINE_DIR, jobs: int = 1) -> int:
    """Run ``suite`` in a temporary folder and compare with (or, with ``update``, rewrite) its baseline."""
    current = suite_scores(suite, data_root=data_root, jobs=jobs)
    return check_scores(suite, current, update=update, rtol=rtol, atol=atol, baseline_dir=baseline_dir)


def suite_scores(suite: str, *, data_root=None, jobs: int = 1) -> pd.DataFrame:
    """Run ``suite`` in a temporary folder: its mean scores (dataset, config, metric, value)."""
    from bench.datasets import Registry
    from bench.runner import run_suite

    metric_names = list(Registry().suite(suite)["metrics"])
    with tempfile.TemporaryDirectory() as tmp:
        out = run_suite(suite, out=Path(tmp) / suite, data_root=data_root, jobs=jobs)
        return suite_means(out, metric_names)


def check_scores(suite: str, current: pd.DataFrame, *, update: bool = False, rtol: float = 1e-4, atol: float = 1e-6,
                 baseline_dir: Path = BASELINE_DIR) -> int:
    """Compare ``suite``'s scores with its baseline and print what moved (0: no regression, 1: some);
    with ``update``, write them as the new baseline instead."""
    path = baseline_dir / f"{suite}.csv"
    if update:
        write_text(path, current.to_csv(index=False, float_format="%.10g"))
        print(f"wrote {path} ({len(current)} scores)")
        return 0
    if not path.exists():
        raise UserError(f"no baseline for suite {suite!r} at {path}; create it with "
                        f"python -m bench regress --suite {suite} --update")
    moved = compare(current, pd.read_csv(path), rtol=rtol, atol=atol)
    if moved:
        print(f"SCORES MOVED in suite {suite!r} against {path} (rtol {rtol}, atol {atol}), {len(moved)} of "
              f"{len(current)}:")
        for line in moved:
            print(f"  {line}")
        print(f"If the change is intended, update the baseline and say why in the commit: "
              f"python -m bench regress --suite {suite} --update")
        return 1
    print(f"suite {suite!r}: {len(current)} scores match the baseline (rtol {rtol}, atol {atol})")
    return 0
