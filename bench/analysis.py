"""The statistics behind the report: summaries, ranks, Friedman and Wilcoxon-Holm tests, worst cases.

Plain functions on the tidy results table (one row per dataset, pair, configuration; one column per metric).
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

ALPHA = 0.05


def summarise(results: pd.DataFrame, metric_names: list[str]) -> pd.DataFrame:
    """Mean and standard deviation (ddof 1) per dataset x configuration for each metric, the fusion time
    and the time of scoring the metrics (cells from runs before it was recorded have none)."""
    cols = metric_names + ["seconds"] + (["metric_seconds"] if "metric_seconds" in results else [])
    grouped = results.groupby(["dataset", "config"], sort=False)[cols]
    mean, std = grouped.mean(), grouped.std(ddof=1)
    summary = pd.concat({"mean": mean, "std": std}, axis=1)
    summary.columns = [f"{metric}_{stat}" for stat, metric in summary.columns]
    summary.insert(0, "n", grouped.size())
    return summary.reset_index()


def score_matrix(results: pd.DataFrame, dataset: str, metric: str, configs: list[str]) -> pd.DataFrame:
    """Pairs x configurations for one metric, only pairs that every configuration scored."""
    rows = results[results["dataset"] == dataset]
    return rows.pivot(index="pair", columns="config", values=metric).reindex(columns=configs).dropna()


def average_ranks(results: pd.DataFrame, dataset: str, metric_names: list[str], configs: list[str],
                  higher_is_better: dict[str, bool]) -> pd.Series:
    """Mean rank of each configuration over pairs and metrics (1 = best; ties share the mean rank)."""
    ranks = []
    for m in metric_names:
        scores = score_matrix(results, dataset, m, configs)
        if scores.empty:
            continue
        ranks.append(scores.rank(axis=1, ascending=not higher_is_better[m]).mean(axis=0))
    return pd.concat(ranks, axis=1).mean(axis=1) if ranks else pd.Series(np.nan, index=configs)


def friedman(scores: pd.DataFrame) -> float:
    """p-value of the Friedman test that all configurations score alike over the pairs (NaN if untestable)."""
    if scores.shape[1] < 3 or scores.shape[0] < 2:
        return float("nan")
    columns = [scores[c].to_numpy() for c in scores.columns]
    if all(np.array_equal(columns[0], c) for c in columns[1:]):
        return 1.0
    return float(stats.friedmanchisquare(*columns).pvalue)


def holm(pvalues: dict[str, float]) -> dict[str, float]:
    """Holm–Bonferroni adjusted p-values (Holm 1979), monotone, NaN kept as NaN."""
    valid = sorted((p, k) for k, p in pvalues.items() if np.isfinite(p))
    adjusted, running = {}, 0.0
    for i, (p, k) in enumerate(valid):
        running = max(running, min(1.0, (len(valid) - i) * p))
        adjusted[k] = running
    return {k: adjusted.get(k, float("nan")) for k in pvalues}


def better(metric: str, mine: float, theirs: float, margin: float = 0.0) -> bool:
    """``mine`` beats ``theirs`` on ``metric`` by more than ``margin``, in the metric's own direction.

    The one win rule of the project: reports, the GAN evaluation, the plus study and the target table
    count wins with it (a lower-is-better metric such as MSE wins by being smaller)."""
    from metrics import get_metric

    return (mine - theirs > margin) if get_metric(metric).higher_is_better else (theirs - mine > margin)


def paired_wilcoxon(x, y, min_pairs: int = 2) -> float:
    """Two-sided Wilcoxon signed-rank p-value of paired samples ``x``, ``y`` (Wilcoxon 1945); NaN when
    fewer than ``min_pairs`` pairs or no pair differs (the test is undefined)."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if len(x) < min_pairs or np.allclose(x - y, 0):
        return float("nan")
    return float(stats.wilcoxon(x, y).pvalue)


def wilcoxon_vs_reference(scores: pd.DataFrame, reference: str, higher_is_better: bool) -> dict[str, str]:
    """Significance marks against ``reference``: '+' better, '−' worse (Wilcoxon signed-rank, Holm, α = 0.05).

    Returns a mark per configuration ('' when not significant or untestable, 'ref' for the reference).
    """
    if reference not in scores.columns:
        return {}
    pvalues, sign = {}, {}
    for config in scores.columns:
        if config == reference:
            continue
        diff = scores[config] - scores[reference]
        pvalues[config] = paired_wilcoxon(scores[config], scores[reference])
        if not np.isfinite(pvalues[config]):
            continue
        sign[config] = np.median(diff) > 0 if np.median(diff) != 0 else diff.mean() > 0
    marks = {reference: "ref"}
    for config, p in holm(pvalues).items():
        better = sign.get(config) == higher_is_better
        marks[config] = ("+" if better else "−") if np.isfinite(p) and p < ALPHA else ""
    return marks


def worst_pairs(results: pd.DataFrame, dataset: str, config: str, metric: str, higher_is_better: bool,
                k: int = 3) -> pd.DataFrame:
    rows = results[(results["dataset"] == dataset) & (results["config"] == config)].dropna(subset=[metric])
    return rows.sort_values(metric, ascending=higher_is_better).head(k)


def most_different_box(images: list[np.ndarray], box: int) -> tuple[int, int]:
    """Top-left (row, col) of the ``box`` x ``box`` window where the fused images differ most.

    The score is the window mean of the per-pixel standard deviation across the images (on luma).
    """
    from scipy.ndimage import uniform_filter

    from common.colour import luma

    stack = np.stack([luma(img) for img in images])
    spread = uniform_filter(stack.std(axis=0), size=box, mode="constant")
    h, w = spread.shape
    half = box // 2
    inner = spread[half: h - box + half + 1, half: w - box + half + 1]
    r, c = np.unravel_index(np.argmax(inner), inner.shape)
    return int(r), int(c)
