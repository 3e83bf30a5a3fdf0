"""Loading the metrics' compiled (numba) kernels, with the numpy path as the fallback.

A kernel module (``metrics._fmi_numba``, ``_phase_numba``, ``_filter_numba``) imports numba and decorates
its loops with ``njit(cache=CACHE)``.
``compiled_kernels`` imports it the first time a metric asks, compiles it once on a tiny input (so that
a compile error surfaces here, not in the middle of a metric), and returns the module -- or None, after
ONE one-line warning, when numba is missing or the kernels do not compile; the metric then runs its
numpy path (same values, slower). Compile time is paid once per process at most, and with the disk
cache usually not at all: numba writes the compiled code to ``__pycache__`` next to the module, or, where
that is not writable, to its user-wide cache directory (``NUMBA_CACHE_DIR`` overrides both); where no
cache directory is usable at all, the kernels are compiled without one.
"""
from __future__ import annotations

import importlib
import sys
import warnings
from typing import Callable

CACHE = True            # read by the kernel modules at import; False after a cache-less retry
_LOADED: dict[str, object] = {}


def compiled_kernels(module: str, warm_up: Callable[[object], None], purpose: str):
    """The imported and compiled kernel module ``module``, or None (numpy fallback, warned once).

    ``warm_up(mod)`` calls every kernel once on tiny inputs of the types the metric passes (a numba
    dispatcher compiles per argument type on first call). ``purpose`` names what falls back, for the
    warning."""
    if module not in _LOADED:
        _LOADED[module] = _load(module, warm_up, purpose)
    return _LOADED[module]


def _load(module, warm_up, purpose):
    global CACHE
    try:
        try:
            mod = importlib.import_module(module)
        except RuntimeError:        # numba: "cannot cache function ...: no locator available"
            if not CACHE:
                raise
            CACHE = False
            sys.modules.pop(module, None)
            mod = importlib.import_module(module)
        warm_up(mod)
        return mod
    except Exception as error:      # ImportError, numba's TypingError/LoweringError, LLVM errors
        from metrics._filters import MetricWarning    # (here: metrics._filters itself loads kernels)
        reason = (str(error).strip().splitlines() or [""])[0][:160]
        warnings.warn(f"{purpose} runs on its numpy path (same values, slower): compiled kernel "
                      f"{module} unavailable ({type(error).__name__}: {reason})", MetricWarning, stacklevel=3)
        return None
