"""Objective fusion metrics: one registry (``metrics.registry``); importing this package registers all."""
import importlib
import pkgutil

from metrics._allocator import keep_freed_memory
from metrics.registry import CONVENTIONS, METRICS, Metric, compute, get_metric, register_metric

keep_freed_memory()  # page faults on fresh temporaries dominated the small metrics (see metrics/_allocator.py)

for _mod in pkgutil.iter_modules(__path__):
    if _mod.name != "registry" and not _mod.name.startswith("_"):
        importlib.import_module(f"{__name__}.{_mod.name}")

__all__ = ["CONVENTIONS", "METRICS", "Metric", "compute", "get_metric", "register_metric"]
