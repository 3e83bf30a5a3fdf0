"""Published outputs as methods: a folder of another method's fused images, matched to a dataset's pairs by name.

For methods whose code or weights the suite cannot run (a TensorFlow-1 checkpoint, an unreleased model),
the authors' own fused images enter a suite like any method: same metrics, tables, figure grids and
significance tests; only the algorithm table has no row for them (nothing runs here). In ``datasets.yaml``::

    methods:
      u2fusion:
        kind: precomputed
        citation: "H. Xu et al., U2Fusion ..., IEEE TPAMI 44(1), 2022"
        folders:                              # one folder per dataset the method has outputs for
          harvard_ct_mri: ../shared/peers/outputs/u2fusion/CT-MRI
        pattern: "{name}.png"                 # file name of the output for pair <name> (the default)

A relative folder is taken from the folder holding ``datasets.yaml`` (the repository); ``~`` and ``$VARS`` are
expanded. Every pair of the dataset needs its file and every file matching the pattern needs its pair: a
missing or extra name is one line that lists them. An output must have its sources' size.
"""
from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from common.errors import UserError, first_few
from common.io import list_images, read_image


@dataclass(frozen=True)
class PrecomputedMethod:
    name: str
    citation: str
    description: str
    folders: dict                 # dataset name -> folder (as written in datasets.yaml)
    pattern: str = "{name}.png"
    base: Path = Path(".")        # where relative folders start

    def folder(self, dataset: str) -> Path:
        if dataset not in self.folders:
            raise UserError(f"precomputed method {self.name!r} has no folder for dataset {dataset!r} "
                            f"(it has: {', '.join(self.folders) or 'none'})")
        path = Path(os.path.expandvars(str(self.folders[dataset]))).expanduser()
        return path if path.is_absolute() else (self.base / path)

    def files(self, dataset: str) -> dict[str, Path]:
        """Pair name -> output file, for every file in the dataset's folder that matches ``pattern``."""
        folder = self.folder(dataset)
        if not folder.is_dir():
            raise UserError(f"precomputed method {self.name!r}: folder {folder} for dataset {dataset!r} not found")
        head, _, tail = self.pattern.partition("{name}")
        regex = re.compile(re.escape(head) + "(?P<name>.+)" + re.escape(tail) + r"\Z")
        found = {}
        for path in list_images(folder):
            match = regex.match(path.name)
            if match:
                found[match["name"]] = path
        return found

    def check_names(self, dataset: str, pair_names: list[str]) -> None:
        """One line naming the pairs without an output and the outputs without a pair, if any."""
        found = self.files(dataset)
        missing = sorted(set(pair_names) - set(found))
        extra = sorted(set(found) - set(pair_names))
        if missing or extra:
            raise UserError(f"precomputed method {self.name!r}, dataset {dataset!r} ({self.folder(dataset)}, "
                            f"pattern {self.pattern!r}): {len(missing)} pair(s) without an output"
                            f"{': ' + first_few(missing) if missing else ''}; {len(extra)} output(s) without a pair"
                            f"{': ' + first_few(extra) if extra else ''}")

    def load(self, dataset: str, pair: str, shape: tuple[int, int]) -> np.ndarray:
        path = self.folder(dataset) / self.pattern.format(name=pair)
        fused = read_image(path)
        if fused.shape[:2] != tuple(shape):
            raise UserError(f"{path}: {fused.shape[1]}x{fused.shape[0]}, but the sources of pair {pair!r} are "
                            f"{shape[1]}x{shape[0]} (W x H)")
        return fused

    def version(self, datasets: list[str]) -> str:
        """A hash of the output files for ``datasets``: the cells' code version (changed files are rescored)."""
        digest = hashlib.sha1(self.pattern.encode())
        for dataset in datasets:
            for name, path in sorted(self.files(dataset).items()):
                digest.update(name.encode())
                digest.update(path.read_bytes())
        return "precomputed-" + digest.hexdigest()[:12]


def precomputed_methods(specs: dict, base: Path) -> dict[str, PrecomputedMethod]:
    """The ``kind: precomputed`` entries of a registry's ``methods`` section."""
    import methods

    found = {}
    for name, spec in (specs or {}).items():
        if not isinstance(spec, dict) or spec.get("kind") != "precomputed":
            raise UserError(f"datasets.yaml: method {name!r} needs 'kind: precomputed' (the only kind listed there; "
                            f"other methods are registered in methods/)")
        if name in methods.METHODS:
            raise UserError(f"datasets.yaml: precomputed method {name!r} has the name of a registered method")
        if not isinstance(spec.get("folders"), dict) or not spec["folders"]:
            raise UserError(f"datasets.yaml: precomputed method {name!r} needs 'folders' (dataset: folder)")
        pattern = str(spec.get("pattern", "{name}.png"))
        if pattern.count("{name}") != 1:
            raise UserError(f"datasets.yaml: precomputed method {name!r}: pattern {pattern!r} must hold {{name}} once")
        found[name] = PrecomputedMethod(name, str(spec.get("citation", "")), str(spec.get("description", "")),
                                        dict(spec["folders"]), pattern, base)
    return found
