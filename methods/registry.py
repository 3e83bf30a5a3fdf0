"""The one registry of fusion methods and the uniform call every method answers.

A method is a plain function ``fn(a, b, **params) -> fused`` on two grey float32 images of the same
shape (H, W) with values in [0, 1], returning one such image. Its parameters are its keyword-only
arguments; their defaults are the method's defaults. Register it with ``@register_method``; adding a
method is adding a file under ``methods/`` (every module there is imported by ``methods/__init__``).

Colour is handled once, in ``fuse``: an RGB source is fused through its BT.601 luma and the result is
re-coloured with that source's chroma (see ``common.colour``). Methods never see colour.

Parameters are checked before any work (``Method.check_params``; the CLI's ``fuse`` and the suite runner
call it before reading an image or creating a run folder). The type of each comes from its annotation
(else its default): ``int``, ``float``, ``bool``, ``str``, ``tuple[int, ...]``, ``X | None``; text such as
a command line's ``level=3`` or ``levels=2,3,3,4`` is converted to it. The values allowed beyond the type
are declared beside the method, ``@register_method(..., allowed={"level": between(1, 10)})``, or once in
``SHARED_ALLOWED`` for a parameter that means the same in every method that has it (``input_scale``,
``device``). A value that is not allowed is one ``UserError`` line naming the method, the parameter, the
value and what is allowed.
"""
from __future__ import annotations

import inspect
import math
import os
import types
import typing
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cache
from typing import Any, Callable

import numpy as np

from common.colour import luma, recolour
from common.errors import UserError, first_few
from common.io import check_image


# --- allowed values ----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Allowed:
    """The values of a parameter a method accepts beyond its type: ``test(value)``, and ``describe()`` for
    the error message (a function, so that a list such as pywt's wavelets is built only when needed)."""
    test: Callable[[Any], bool]
    describe: Callable[[], str]

    def __call__(self, value) -> bool:
        return bool(self.test(value))


def between(low: float | None = None, high: float | None = None) -> Allowed:
    """``low <= value <= high``; ``None`` leaves that end open."""
    words = (f"from {low} to {high}" if low is not None and high is not None
             else f">= {low}" if low is not None else f"<= {high}")
    return Allowed(lambda v: (low is None or v >= low) and (high is None or v <= high), lambda: words)


def above(low: float) -> Allowed:
    """``value > low`` (a scale, a regularisation weight)."""
    return Allowed(lambda v: v > low, lambda: f"> {low}")


def one_of(values: Callable[[], Any] | Any) -> Allowed:
    """One of ``values``: a collection, or a function returning one (called once, when first needed)."""
    listed = cache(values if callable(values) else (lambda: values))

    def describe():
        names = [str(v) for v in listed()]
        return "one of " + (", ".join(names) if len(names) <= 8 else f"{len(names)} names: " + first_few(names, 8))
    return Allowed(lambda v: v in listed(), describe)


def each(allowed: Allowed) -> Allowed:
    """Every item of a tuple parameter is ``allowed``."""
    return Allowed(lambda items: all(allowed(v) for v in items), lambda: "each " + allowed.describe())


def _torch_device_available(name: str) -> bool:
    import torch
    try:
        device = torch.device(name)
    except (RuntimeError, ValueError):
        return False
    if device.type == "cpu":
        return True
    if device.type == "cuda":
        return torch.cuda.is_available() and (device.index or 0) < torch.cuda.device_count()
    if device.type == "mps":
        return torch.backends.mps.is_available()
    return False


def _torch_devices_here() -> str:
    import torch
    names = ["cpu"] + [f"cuda:{i}" for i in range(torch.cuda.device_count() if torch.cuda.is_available() else 0)]
    return "a torch device available here (" + ", ".join(names) + ")"


TORCH_DEVICE = Allowed(_torch_device_available, _torch_devices_here)

# parameters that mean the same in every method that takes them, checked once here
SHARED_ALLOWED: dict[str, Allowed] = {
    "input_scale": above(0),      # the authors' 0..255 working scale; 0 would divide by zero
    "device": TORCH_DEVICE,
}


# --- parameters --------------------------------------------------------------------------------------------

_KIND_WORDS = {int: "an integer", float: "a number", bool: "true or false", str: "text"}
_ITEM_WORDS = {int: "integers", float: "numbers", str: "names"}
_TRUE, _FALSE = ("true", "yes", "on", "1"), ("false", "no", "off", "0")


@dataclass(frozen=True)
class Param:
    """One keyword parameter of a method: its default, its type and what values it allows."""
    name: str
    default: Any
    kind: type | None            # int, float, bool, str or tuple; None: passed on as given
    optional: bool = False       # None is accepted (written ``none`` on a command line)
    item: type | None = None     # the items' type of a tuple
    allowed: Allowed | None = None

    @classmethod
    def from_signature(cls, p: inspect.Parameter, allowed: Allowed | None) -> "Param":
        annotation, optional = p.annotation, p.default is None
        if typing.get_origin(annotation) in (types.UnionType, typing.Union):
            rest = [a for a in typing.get_args(annotation) if a is not type(None)]
            optional = optional or len(rest) < len(typing.get_args(annotation))
            annotation = rest[0] if len(rest) == 1 else None
        item = None
        if typing.get_origin(annotation) is tuple:
            kind, item = tuple, (typing.get_args(annotation) or (None,))[0]
        elif annotation in (int, float, bool, str, tuple):
            kind = annotation
        else:                    # no usable annotation: the default's type
            kind = type(p.default) if type(p.default) in (int, float, bool, str, tuple) else None
        if kind is tuple and item in (None, Ellipsis) and p.default:
            item = type(p.default[0])
        return cls(p.name, p.default, kind, optional, item if item is not Ellipsis else None, allowed)

    def expects(self) -> str:
        """What is allowed, in words: 'an integer from 1 to 10', 'one of db1, db2, ...'."""
        if self.kind is tuple:
            text = f"a comma-separated list of {_ITEM_WORDS.get(self.item, 'values')}"
        else:
            text = _KIND_WORDS.get(self.kind, "a value")
        if self.allowed is not None:
            words = self.allowed.describe()
            text = words if self.kind is str else f"{text} {words}"
        return text + (", or none" if self.optional else "")

    def convert(self, value):
        """``value`` (text from a command line, or a YAML/Python value) as this parameter's type;
        ``ValueError`` when it is not one or is not allowed."""
        if value is None or (self.optional and isinstance(value, str) and value.strip().lower() in ("none", "null")):
            if self.optional:
                return None
            raise ValueError("none")
        if self.kind is tuple:
            items = value.split(",") if isinstance(value, str) else value
            items = list(items) if isinstance(items, (list, tuple)) else [items]
            if not items:
                raise ValueError("empty")
            value = tuple(_as_kind(self.item, v) for v in items)
        else:
            value = _as_kind(self.kind, value)
        if self.allowed is not None and not self.allowed(value):
            raise ValueError("not allowed")
        return value


def _as_kind(kind: type | None, value):
    if kind is None:
        return value
    if isinstance(value, str) and kind is not str:
        value = value.strip()
        if kind is bool:
            if value.lower() not in _TRUE + _FALSE:
                raise ValueError(value)
            return value.lower() in _TRUE
        return _as_kind(kind, int(value) if kind is int else float(value))
    if kind is bool:
        if not isinstance(value, (bool, np.bool_)):
            raise ValueError(value)
        return bool(value)
    if isinstance(value, (bool, np.bool_)):
        raise ValueError(value)
    if kind is int and isinstance(value, (int, np.integer)):
        return int(value)
    if kind is float and isinstance(value, (int, float, np.integer, np.floating)) and math.isfinite(value):
        return float(value)
    if kind is str and isinstance(value, (str, os.PathLike)):     # a path given as a Path is its text
        return os.fspath(value)
    raise ValueError(value)


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
    specs: dict[str, Param] = field(default_factory=dict)    # name -> Param, in signature order
    # optional: finish(image) -> image, applied by ``fuse`` to the final grey or re-coloured RGB image: a
    # published method's own output scaling that acts on all colour channels (GeSeNet's min-max stretch)
    finish: Callable[[np.ndarray], np.ndarray] | None = None
    # optional: unavailable(**params) -> None, or why this configuration cannot run here (a deep peer whose
    # published weights are not in the cache); a suite leaves it out and its report says why
    unavailable: Callable[..., str | None] | None = None

    def check_params(self, params: dict) -> dict:
        """``params`` with every value converted to its parameter's type; a ``UserError`` line naming the
        method, the parameter, the value and what is allowed for an unknown name or a value not allowed."""
        unknown = sorted(set(params) - set(self.params))
        if unknown:
            raise UserError(f"method {self.name!r} has no parameter {', '.join(map(repr, unknown))} "
                            f"(it takes: {', '.join(self.params) or 'none'})")
        checked = {}
        for name, value in params.items():
            spec = self.specs.get(name)
            if spec is None:
                checked[name] = value
                continue
            try:
                checked[name] = spec.convert(value)
            except (ValueError, TypeError, OverflowError):
                raise UserError(f"method {self.name!r}: parameter {name}={value!r} is not allowed; "
                                f"expected {spec.expects()}") from None
        return checked

    def __call__(self, a: np.ndarray, b: np.ndarray, **params) -> np.ndarray:
        return self.fn(a, b, **self.check_params(params))


METHODS: dict[str, Method] = {}


def register_method(name: str, *, citation: str, trainable: bool = False, complexity=None,
                    allowed: dict[str, Allowed] | None = None, finish=None, unavailable=None):
    """Decorator: register ``fn(a, b, *, param=default, ...)`` under ``name``; ``allowed`` maps a parameter
    to its allowed values (``between``, ``above``, ``one_of``, ``each``) beyond what its type says."""
    def decorate(fn):
        if name in METHODS:
            raise ValueError(f"method {name!r} registered twice ({METHODS[name].fn.__module__} and {fn.__module__})")
        try:
            sig = inspect.signature(fn, eval_str=True)
        except (NameError, SyntaxError, TypeError):     # an annotation that does not evaluate: use defaults
            sig = inspect.signature(fn)
        keywords = [p for p in sig.parameters.values() if p.kind is p.KEYWORD_ONLY]
        stray = sorted(set(allowed or {}) - {p.name for p in keywords})
        if stray:
            raise ValueError(f"method {name!r}: allowed values given for unknown parameter(s) {stray}")
        specs = {p.name: Param.from_signature(p, (allowed or {}).get(p.name, SHARED_ALLOWED.get(p.name)))
                 for p in keywords}
        summary = (inspect.getdoc(fn) or name).splitlines()[0]
        METHODS[name] = Method(name, fn, citation, summary, {p.name: p.default for p in keywords}, trainable,
                               complexity, specs, finish, unavailable)
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
