"""The one scoring path: every table of the suite scores fused images here.

``score_fused`` scores one fused image (timed) and is what the runner's cells and the metrics folder mode
call; ``score_fusers`` fuses and scores every pair of some datasets with a set of fusers and is what the GAN
evaluation (``bench.gan_evaluate``: shipped methods, a run's epoch checkpoints), the campaign's target table
(``bench.gan_targets``) and the studies (``bench.studies.plus``) call. So a metric convention, the colour
rule (``metrics.compute`` scores colour images on their BT.601 luma) or the timing is decided in one place.
"""
from __future__ import annotations

import sys
import time
from typing import Callable, Iterable, Mapping

import numpy as np
import pandas as pd
from tqdm import tqdm

import metrics

Fuser = Callable[[np.ndarray, np.ndarray], np.ndarray]


def score_fused(a: np.ndarray, b: np.ndarray, fused: np.ndarray, names: Iterable[str] | None = None,
                convention: str = "default") -> tuple[dict[str, float], float]:
    """The metrics of one fused image and the seconds they took (``metrics.compute``; all metrics if
    ``names`` is None)."""
    start = time.perf_counter()
    scores = metrics.compute(a, b, fused, list(names) if names is not None else None, convention=convention)
    return scores, time.perf_counter() - start


def score_fusers(fusers: Mapping[str, Fuser], datasets: Iterable, names: Iterable[str] | None = None, *,
                 limit: int | None = None, convention: str = "default", label: str = "method",
                 progress: bool = True) -> pd.DataFrame:
    """Fuse every pair of ``datasets`` with every fuser and score it.

    Parameters
    ----------
    fusers : mapping of str to callable
        ``{label: fuse(a, b) -> fused}``, in the order of the table's rows.
    datasets : iterable of str or bench.datasets.Dataset
        Registry names or datasets; each pair is loaded once for all fusers.
    names : iterable of str, optional
        Metric names (default: every registered metric).
    limit : int, optional
        Only the first ``limit`` pairs of each dataset.
    label : str
        The name of the column that holds the fuser's label.

    Returns
    -------
    pandas.DataFrame
        One row per (dataset, pair, fuser): ``label``, ``dataset``, ``pair``, ``seconds`` (fusion),
        ``metric_seconds`` and one column per metric.
    """
    from bench.datasets import Registry

    registry = None
    loaded = []
    for dataset in datasets:
        if isinstance(dataset, str):
            registry = registry or Registry()
            dataset = registry.dataset(dataset, announce=False)
        loaded.append(dataset)
    jobs = [(ds, pair) for ds in loaded for pair in ds.pairs(limit)]
    rows = []
    bar = tqdm(jobs, desc="scoring", unit="pair", file=sys.stderr, disable=not progress or len(jobs) < 2)
    for ds, pair in bar:
        a, b = pair.load()
        for name, fuse in fusers.items():
            start = time.perf_counter()
            fused = fuse(a, b)
            seconds = time.perf_counter() - start
            scores, metric_seconds = score_fused(a, b, fused, names, convention)
            rows.append({label: name, "dataset": ds.name, "pair": pair.name, "seconds": seconds,
                         "metric_seconds": metric_seconds, **scores})
    return pd.DataFrame(rows)


def metric_columns(frame: pd.DataFrame) -> list[str]:
    """The columns of a scores table that are registered metrics, in the table's order."""
    return [c for c in frame.columns if c in metrics.METRICS]
