"""Intermediate results shared by several metrics within one ``metrics.compute`` call.

Many metrics start from the same quantities: every one rescales A, B, F to 0..255; SSIM and Piella's
Qw and Qe filter the same local statistics; Qe contains Qw; VIF and VIFF build the same Gaussian
pyramids and channel maps; Qy and Qc share Yang's window statistics. Inside ``compute`` these are
built once (``shared``); a metric called on its own builds them itself, with the same code, so a
value never depends on whether it was computed alone or in a suite.

Keys are the identities of the input arrays plus a description of the computation. The store keeps a
reference to every input it keyed on, so an id cannot be reused by a new array while the store lives,
and it makes every shared array read-only, so a metric that tried to modify one in place would fail
loudly instead of corrupting another metric's input.
"""
from __future__ import annotations

from contextlib import contextmanager
from contextvars import ContextVar

import numpy as np

_STORE: ContextVar[dict | None] = ContextVar("metric_shared_results", default=None)


@contextmanager
def shared_results():
    """Within this block, ``shared`` computes each distinct intermediate result once."""
    token = _STORE.set({})
    try:
        yield
    finally:
        _STORE.reset(token)


def freeze(value):
    """Mark an array (or the arrays in a list or tuple) read-only; returns ``value``."""
    if isinstance(value, np.ndarray):
        value.flags.writeable = False
    elif isinstance(value, (list, tuple)):
        for item in value:
            freeze(item)
    return value


def shared(kind: str, build, *inputs, options=()):
    """``build(*inputs)``, computed once per ``shared_results`` block for the same input objects and
    ``options`` (a hashable description of every other argument ``build`` depends on); outside such a
    block, simply ``build(*inputs)``."""
    store = _STORE.get()
    if store is None:
        return build(*inputs)
    key = (kind, tuple(id(x) for x in inputs), options)
    if key not in store:
        store[key] = (freeze(build(*inputs)), inputs)  # inputs pinned: their ids stay unique
    return store[key][0]
