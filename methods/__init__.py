"""Fusion methods: one registry (``methods.registry``), one adapter file per method.

Importing this package imports every module in it, so each ``@register_method`` runs.
"""
import importlib
import pkgutil

from methods.registry import METHODS, Method, fuse, get_method, register_method

for _mod in pkgutil.iter_modules(__path__):
    if _mod.name != "registry" and not _mod.name.startswith("_"):
        importlib.import_module(f"{__name__}.{_mod.name}")

__all__ = ["METHODS", "Method", "fuse", "get_method", "register_method"]
