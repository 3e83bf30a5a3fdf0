"""The one registry of fusion metrics and ``compute``, the entry point the bench and CLI use.

A metric is a plain function ``fn(a, b, f, *, convention="default") -> float`` on three grey
float images of one shape with values in [0, 1] (A, B the sources, F the fused image). Internally most
metrics work on the 0..255 scale, as every reference implementation does.

Conventions: published metric codes disagree (log base, bins, SSIM summed or averaged, data range,
uint8 truncation). ``convention`` names whose numbers a metric reproduces: ``default`` (the documented,
mathematically clean choice), ``cddfuse`` (CDDFuse ``utils/Evaluator.py``) and ``vifb`` (VIFB /
Zheng Liu MATLAB code). A metric lists the conventions it supports.
"""
from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Callable

import numpy as np

from common.colour import luma
from common.errors import UserError
from metrics._filters import ImageTooSmall, warn
from metrics._shared import shared_results

CONVENTIONS = ("default", "cddfuse", "vifb")


@dataclass(frozen=True)
class Metric:
    name: str
    fn: Callable[..., float]
    higher_is_better: bool
    value_range: tuple[float, float]
    conventions: tuple[str, ...]
    summary: str

    @property
    def direction(self) -> str:
        return "higher" if self.higher_is_better else "lower"


METRICS: dict[str, Metric] = {}


def register_metric(name: str, *, higher_is_better: bool, value_range=(0.0, float("inf")),
                    conventions=("default",)):
    """Decorator: register ``fn(a, b, f, *, convention=...)`` under ``name``."""
    def decorate(fn):
        if name in METRICS:
            raise ValueError(f"metric {name!r} registered twice")
        summary = (inspect.getdoc(fn) or name).splitlines()[0]
        METRICS[name] = Metric(name, fn, higher_is_better, tuple(value_range), tuple(conventions), summary)
        return fn
    return decorate


def get_metric(name: str) -> Metric:
    try:
        return METRICS[name]
    except KeyError:
        raise UserError(f"unknown metric {name!r} (known: {', '.join(METRICS)})") from None


def compute(a: np.ndarray, b: np.ndarray, f: np.ndarray, names=None, convention: str = "default") -> dict:
    """Every requested metric of fused image ``f`` against sources ``a``, ``b`` (floats in [0, 1]).

    Colour inputs are reduced to their BT.601 luma Y first. A metric that does not implement
    ``convention`` is computed under ``default``. A metric whose window or scale pyramid does not fit
    the images (MS_SSIM below 161 pixels a side, VIF below ~48) is NaN, with a warning.
    """
    if convention not in CONVENTIONS:
        raise UserError(f"unknown metric convention {convention!r} (known: {', '.join(CONVENTIONS)})")
    a, b, f = (np.asarray(luma(np.asarray(x, dtype=np.float32)), dtype=np.float64) for x in (a, b, f))
    if not (a.shape == b.shape == f.shape):
        raise UserError(f"metric inputs differ in shape: A {a.shape}, B {b.shape}, F {f.shape}")
    if a.ndim != 2 or min(a.shape) < 2:
        raise UserError(f"metric inputs must be images of at least 2x2 pixels, got shape {a.shape}")
    for x, label in ((a, "A"), (b, "B"), (f, "F")):
        if not np.isfinite(x).all():
            raise UserError(f"metric input {label} contains NaN or infinite values")
    selected = [get_metric(n) for n in (names or METRICS)]
    with shared_results():  # intermediate maps common to several metrics are built once
        return {m.name: _value(m, a, b, f, convention if convention in m.conventions else "default")
                for m in selected}


def _value(metric: Metric, a, b, f, convention: str) -> float:
    try:
        return float(metric.fn(a, b, f, convention=convention))
    except ImageTooSmall as error:
        warn(f"{metric.name} is NaN: {error}")
        return float("nan")
