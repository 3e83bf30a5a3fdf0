"""The one registry of fusion methods and the uniform call every method answers.

A method is a plain function ``fn(a, b, **params) -> fused`` on two grey float32 images of the same
shape (H, W) with values in [0, 1], returning one such image. Its parameters are its keyword-only
arguments; their defaults are the method's defaults. Register it with ``@register_method``; adding a
method is adding a file under ``methods/`` (every module there is imported by ``methods/__init__``).

Colour is handled once, in ``fuse``: an RGB source is fused through its BT.601 luma and the result is
re-coloured with that source's chroma (see ``bench.colour``). Methods never see colour.
"""
from __future__ import annotations

import inspect
import os
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from bench.colour import luma, recolour
from bench.errors import UserError
from bench.io import check_image


@dataclass(frozen=True)
class Method:
    name: str
    fn: Callable[..., np.ndarray]
    citation: str
    summary: str
    params: dict = field(default_factory=dict)
    trainable: bool = False
    # optional: complexity(**params) -> {"parameters": int, "macs": int} per 256x256 pair (learned models)
    complexity: Callable[..., dict] | None = None
    # optional: finish(image) -> image, applied by ``fuse`` to the final grey or re-coloured RGB image: a
    # published method's own output scaling that acts on all colour channels (GeSeNet's min-max stretch)
    finish: Callable[[np.ndarray], np.ndarray] | None = None
    # optional: unavailable(**params) -> None, or why this configuration cannot run here (a deep peer whose
    # published weights are not in the cache); a suite leaves it out and its report says why
    unavailable: Callable[..., str | None] | None = None

    def __call__(self, a: np.ndarray, b: np.ndarray, **params) -> np.ndarray:
        unknown = sorted(set(params) - set(self.params))
        if unknown:
            raise UserError(f"method {self.name!r} has no parameter {', '.join(map(repr, unknown))} "
                            f"(it takes: {', '.join(self.params) or 'none'})")
        return self.fn(a, b, **params)


METHODS: dict[str, Method] = {}


def register_method(name: str, *, citation: str, trainable: bool = False, complexity=None, finish=None,
                    unavailable=None):
    """Decorator: register ``fn(a, b, *, param=default, ...)`` under ``name``."""
    def decorate(fn):
        if name in METHODS:
            raise ValueError(f"method {name!r} registered twice ({METHODS[name].fn.__module__} and {fn.__module__})")
        sig = inspect.signature(fn)
        params = {p.name: p.default for p in sig.parameters.values() if p.kind is p.KEYWORD_ONLY}
        summary = (inspect.getdoc(fn) or name).splitlines()[0]
        METHODS[name] = Method(name, fn, citation, summary, params, trainable, complexity, finish, unavailable)
        return fn
    return decorate


def worker_threads() -> int:
    """Threads a method may use for its own parallel work: ``OMP_NUM_THREADS`` when set (the project's one
    thread knob, also what BLAS and the FFTs follow), else 1."""
    try:
        return max(1, int(os.environ.get("OMP_NUM_THREADS", "1")))
    except ValueError:
        return 1


@contextmanager
def single_threaded_torch():
    """Run torch on one intra-op thread inside the block; the previous count is restored after.

    For loops of small torch operations (Batch-OMP's per-step products and SVDs in ``methods/sr.py``,
    CSMCA's per-image Fourier-domain ADMM): a multi-threaded BLAS or FFT spends more time waking and
    spinning its threads than computing, and on a busy 2-core machine two threads cost ~8x the CPU time
    of one (measured with numpy/OpenBLAS and torch/MKL alike). numpy's BLAS has no run-time thread
    control without extra packages; torch's has. The count is process-wide: callers parallelise with
    their own threads (``worker_threads``) around the block.
    """
    import torch
    previous = torch.get_num_threads()
    if previous != 1:
        torch.set_num_threads(1)
    try:
        yield
    finally:
        if torch.get_num_threads() != previous:
            torch.set_num_threads(previous)


def get_method(name: str) -> Method:
    try:
        return METHODS[name]
    except KeyError:
        raise UserError(f"unknown method {name!r} (known: {', '.join(sorted(METHODS))})") from None


def fuse(a: np.ndarray, b: np.ndarray, method: str = "average", **params) -> np.ndarray:
    """Fuse two co-registered sources with a registered method; returns float32 in [0, 1].

    Either source may be RGB (a pseudo-colour PET/SPECT image): fusion runs on its Y and the
    result takes its Cb/Cr. If both are RGB, the colour comes from ``b``.
    """
    m = get_method(method)
    a = check_image(np.asarray(a, dtype=np.float32), "source A")
    b = check_image(np.asarray(b, dtype=np.float32), "source B")
    if a.shape[:2] != b.shape[:2]:
        raise UserError(f"source sizes differ: A is {a.shape[1]}x{a.shape[0]}, B is {b.shape[1]}x{b.shape[0]} (W x H)")
    for img, label in ((a, "A"), (b, "B")):
        y = luma(img)
        if float(y.max() - y.min()) == 0.0:
            raise UserError(f"source {label} is constant ({float(y.flat[0]):.4g} everywhere): nothing to fuse")
    colour = b if b.ndim == 3 else (a if a.ndim == 3 else None)
    fused = np.asarray(m(luma(a), luma(b), **params), dtype=np.float32)
    if fused.shape != a.shape[:2]:
        raise RuntimeError(f"method {method!r} returned shape {fused.shape} for inputs of shape {a.shape[:2]}")
    fused = np.clip(fused, 0.0, 1.0)
    fused = recolour(fused, colour) if colour is not None else fused
    return np.clip(m.finish(fused), 0.0, 1.0).astype(np.float32) if m.finish else fused
