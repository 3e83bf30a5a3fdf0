"""The dataset and suite registry, read from ``datasets.yaml``, and pairs of source images.

A ``Pair`` loads lazily; ``Dataset.pairs()`` lists them in name order. Folder datasets pair files by name
(stem) across two modality folders and fail loudly on any unpaired name; phantom datasets render the
project's own brain phantom (``bench.phantom``), so the suite runs with no data at all.
"""
from __future__ import annotations

import hashlib
import math
import os
import sys
import sysconfig
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from common.errors import UserError
from common.io import images_by_stem, read_image, read_yaml_mapping

PACKAGE_ROOT = Path(__file__).resolve().parents[1]
# A checkout (or an editable install) keeps datasets.yaml at its top level, and its runs and reports beside
# it; an installed wheel has datasets.yaml in <prefix>/share/fusionbench (pyproject's data-files) and works
# in the current folder.
IN_CHECKOUT = (PACKAGE_ROOT / "pyproject.toml").is_file() and (PACKAGE_ROOT / "datasets.yaml").is_file()
REPO = PACKAGE_ROOT if IN_CHECKOUT else Path.cwd()
REGISTRY_FILE = (PACKAGE_ROOT / "datasets.yaml" if IN_CHECKOUT
                 else Path(sysconfig.get_path("data")) / "share" / "fusionbench" / "datasets.yaml")
DATA_ROOT_ENV = "FUSION_DATA_ROOT"
DEFAULT_DATA_ROOT = REPO.parent / "shared" / "data" if IN_CHECKOUT else REPO / "data"


@dataclass(frozen=True)
class Pair:
    """Two co-registered sources of one slice. ``load()`` returns (a, b) float32 images in [0, 1]."""
    dataset: str
    name: str
    loader: Callable[[], tuple[np.ndarray, np.ndarray]] = field(repr=False, compare=False)
    files: tuple[str, str] | None = None
    identity: str = ""            # for generated pairs: what determines the images
    case: str = ""                # for slices of volumes: the case (patient) they come from

    def fingerprint(self) -> str:
        """A hash of what the pair's images are made from: file contents, or the generator and its inputs."""
        digest = hashlib.sha1()
        if self.files:
            for path in self.files:
                digest.update(Path(path).read_bytes())
        else:
            digest.update(self.identity.encode())
        return digest.hexdigest()[:16]

    def load(self) -> tuple[np.ndarray, np.ndarray]:
        a, b = self.loader()
        if a.shape[:2] != b.shape[:2]:
            where = " and ".join(self.files) if self.files else f"{self.dataset}/{self.name}"
            raise UserError(f"{where}: sizes differ ({a.shape[1]}x{a.shape[0]} vs {b.shape[1]}x{b.shape[0]})")
        return a, b


@dataclass(frozen=True)
class Dataset:
    name: str
    description: str
    modalities: tuple[str, str]
    colour: str | None            # 'a', 'b' or None: which source is pseudo-colour RGB
    detail: str                   # 'a' or 'b': the detail-rich source
    list_pairs: Callable[[], list[Pair]] = field(repr=False, compare=False)
    location: str = ""            # a folder, or "phantom"

    def pairs(self, limit: int | None = None) -> list[Pair]:
        pairs = self.list_pairs()
        return pairs[:limit] if limit else pairs


def resolve_data_root(data_root: str | os.PathLike | None = None) -> tuple[Path, str]:
    """The data root and where it came from (``--data-root``, the environment, or the default)."""
    if data_root:
        return Path(data_root).expanduser(), "--data-root"
    if os.environ.get(DATA_ROOT_ENV):
        return Path(os.environ[DATA_ROOT_ENV]).expanduser(), f"${DATA_ROOT_ENV}"
    return DEFAULT_DATA_ROOT, "the default ../shared/data" if IN_CHECKOUT else "the default ./data"


class Registry:
    """Datasets and suites from one YAML file."""

    def __init__(self, path: Path = REGISTRY_FILE):
        spec = read_yaml_mapping(path, "dataset registry")
        self.path = Path(path)
        self.dataset_specs: dict = spec.get("datasets", {}) or {}
        self.suites: dict = spec.get("suites", {}) or {}
        for key, value in (("datasets", self.dataset_specs), ("suites", self.suites)):
            if not isinstance(value, dict) or not all(isinstance(v, dict) for v in value.values()):
                raise UserError(f"{path}: '{key}' must map each name to its settings")
        self.method_specs: dict = spec.get("methods", {}) or {}     # kind: precomputed (bench/precomputed.py)

    def precomputed(self) -> dict:
        """The published-output methods of this registry, by name (``bench.precomputed``)."""
        from bench.precomputed import precomputed_methods
        return precomputed_methods(self.method_specs, self.path.parent)

    def suite(self, name: str) -> dict:
        if name not in self.suites:
            raise UserError(f"unknown suite {name!r} (known: {', '.join(self.suites)})")
        suite = dict(self.suites[name])
        for key in ("datasets", "methods", "metrics"):
            if not suite.get(key):
                raise UserError(f"{self.path}: suite {name!r} lists no {key}")
        return suite

    def dataset(self, name: str, data_root=None, *, announce=True) -> Dataset:
        if name not in self.dataset_specs:
            raise UserError(f"unknown dataset {name!r} (known: {', '.join(self.dataset_specs)})")
        spec = self.dataset_specs[name]
        kind = spec.get("kind")
        if kind == "phantom":
            return _phantom_dataset(name, spec)
        if kind not in ("folder", "volumes"):
            raise UserError(f"{self.path}: dataset {name!r} has kind {kind!r} (expected folder, volumes or phantom)")
        root, origin = resolve_data_root(data_root)
        folder = root / spec["root"]
        if not folder.is_dir() and spec.get("fallback"):
            if announce:
                print(f"note: {name}: no folder at {folder}; using {spec['fallback']} instead", file=sys.stderr)
            return self.dataset(spec["fallback"], data_root, announce=announce)
        if not root.is_dir():
            raise UserError(f"data root {root} (from {origin}) does not exist; pass --data-root DIR or set "
                            f"{DATA_ROOT_ENV} to the folder that holds {spec['root'].split('/')[0]}/")
        if not folder.is_dir():
            raise UserError(f"dataset {name!r}: folder {folder} not found (data root {root}, from {origin})")
        if kind == "volumes":  # BraTS-style cases of NIfTI volumes, cut into slices (bench/volumes.py)
            from bench.volumes import volume_dataset
            return volume_dataset(name, spec, folder, _dataset_fields(name, spec))
        return _folder_dataset(name, spec, folder)


def _dataset_fields(name, spec) -> dict:
    modalities = tuple(spec["modalities"])
    if len(modalities) != 2:
        raise UserError(f"dataset {name!r}: 'modalities' must name two sources, got {list(modalities)}")
    return dict(name=name, description=spec.get("description", ""), modalities=modalities,
                colour=spec.get("colour"), detail=spec.get("detail", "b"))


def _phantom_dataset(name, spec) -> Dataset:
    from bench.phantom import phantom_pair

    mod_a, mod_b = spec["modalities"]
    seed, size, count = int(spec.get("seed", 0)), int(spec.get("size", 256)), int(spec.get("pairs", 8))

    def list_pairs():
        code = hashlib.sha1(Path(sys.modules[phantom_pair.__module__].__file__).read_bytes()).hexdigest()[:12]
        return [Pair(name, f"slice{i:02d}", lambda i=i: phantom_pair(mod_a, mod_b, i, seed=seed, size=size),
                     identity=f"phantom {code} {mod_a} {mod_b} index={i} seed={seed} size={size}")
                for i in range(count)]
    return Dataset(**_dataset_fields(name, spec), list_pairs=list_pairs, location="phantom")


def _folder_dataset(name, spec, folder: Path) -> Dataset:
    fields = _dataset_fields(name, spec)
    split = spec.get("split", {"scheme": "all"})
    scheme = split.get("scheme", "all")
    if scheme == "given":
        parts = [folder / split["part"]]
    elif scheme == "casewise":
        parts = sorted(p for p in folder.iterdir() if p.is_dir())
    elif scheme == "all":
        parts = [folder]
    else:
        raise UserError(f"dataset {name!r}: unknown split scheme {scheme!r} (given, casewise or all)")

    def list_pairs():
        named = {}
        for part in parts:
            for stem, paths in pair_files(part / fields["modalities"][0], part / fields["modalities"][1]).items():
                named[stem] = paths
        if scheme == "casewise":
            keep = casewise_split(named, split["part"], float(split.get("test_fraction", 0.2)),
                                  int(split.get("seed", 0)), float(split.get("val_fraction", 0.0)))
            named = {k: v for k, v in named.items() if k in keep}
        return [Pair(name, stem, lambda pa=pa, pb=pb: (read_image(pa), read_image(pb)), (str(pa), str(pb)))
                for stem, (pa, pb) in sorted(named.items())]
    return Dataset(**fields, list_pairs=list_pairs, location=str(folder))


def pair_files(dir_a: Path, dir_b: Path) -> dict[str, tuple[Path, Path]]:
    """Match image files in two folders by file name stem; any unpaired name is an error."""
    for d in (dir_a, dir_b):
        if not d.is_dir():
            raise UserError(f"modality folder {d} not found")
    files_a, files_b = images_by_stem(dir_a), images_by_stem(dir_b)
    for files, d in ((files_a, dir_a), (files_b, dir_b)):
        if not files:
            raise UserError(f"{d}: no images (PNG, JPEG, TIFF or BMP) in this folder")
    only_a, only_b = sorted(set(files_a) - set(files_b)), sorted(set(files_b) - set(files_a))
    if only_a or only_b:
        side, names, other = (dir_a, only_a, dir_b) if only_a else (dir_b, only_b, dir_a)
        shown = ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
        raise UserError(f"{side}: {shown} has no partner in {other}")
    return {stem: (files_a[stem], files_b[stem]) for stem in files_a}


def case_of(stem: str) -> str:
    """Case id of a Harvard file name ``<case><three-digit slice>``."""
    return stem[:-3] if len(stem) > 3 and stem[-3:].isdigit() else stem


def casewise_split(stems, part: str, test_fraction: float, seed: int, val_fraction: float = 0.0,
                   case=case_of) -> set[str]:
    """The stems of one part ('train', 'val' or 'test') of a split that keeps every case in one part only.

    Cases (``case(stem)``) are shuffled with ``seed``; the first ceil(test_fraction * n_cases) go to test, the next
    ceil(val_fraction * n_cases) (at least one when ``val_fraction`` > 0) to val, the rest to train. The test
    part does not depend on ``val_fraction``, so a validation part is carved out of the train pool only; every
    dataset of one split must name the same ``test_fraction``, ``val_fraction`` and ``seed``.
    """
    if part not in ("train", "val", "test"):
        raise UserError(f"case-wise split part must be 'train', 'val' or 'test', got {part!r}")
    if part == "val" and not val_fraction > 0:
        raise UserError("case-wise split part 'val' needs val_fraction > 0")
    cases = sorted({case(s) for s in stems})
    order = np.random.default_rng(seed).permutation(len(cases))
    n_test = max(1, math.ceil(test_fraction * len(cases))) if len(cases) > 1 else 0
    n_val = max(1, math.ceil(val_fraction * len(cases))) if val_fraction > 0 else 0
    if val_fraction > 0 and n_test + n_val >= len(cases):
        raise UserError(f"case-wise split: {len(cases)} case(s) cannot give {n_test} test, {n_val} val and at "
                        f"least one train case")
    ranked = [cases[i] for i in order]
    part_cases = {"test": ranked[:n_test], "val": ranked[n_test:n_test + n_val],
                  "train": ranked[n_test + n_val:]}[part]
    keep = set(part_cases)
    return {s for s in stems if case(s) in keep}
