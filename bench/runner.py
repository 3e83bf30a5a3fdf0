"""Run a suite: datasets x pairs x methods, every fused image saved, every metric recorded.

Nothing is lost: each finished cell (dataset, pair, method) is appended to ``cells.jsonl`` and flushed
to disk before the next starts, fused images are written atomically, and ``--resume`` continues a killed
run without recomputing finished cells. The tables (``results.csv``, ``summary.csv``), figure grids and
``index.html`` are rebuilt from ``cells.jsonl`` at the end.
"""
from __future__ import annotations

import json
import os
import platform
import shlex
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm

from bench.datasets import REPO, Registry
from bench.errors import UserError
from bench.io import read_image, write_image, write_json, write_text

CELLS_FILE = "cells.jsonl"
RUN_FILE = "run.json"


def cell_key(dataset: str, pair: str, method: str) -> str:
    return f"{dataset}/{pair}/{method}"


def prepare_run_dir(out: Path, *, resume: bool, fresh: bool) -> None:
    """Create ``out`` for a new run, or check it for ``resume``; ``fresh`` moves an old run aside."""
    if resume and fresh:
        raise UserError("--resume and --fresh exclude each other")
    has_run = (out / RUN_FILE).exists() or (out / CELLS_FILE).exists()
    if has_run and fresh:
        stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
        aside = out.with_name(f"{out.name}.prev-{stamp}")
        out.rename(aside)
        print(f"note: moved the previous run to {aside}", file=sys.stderr)
    elif has_run and not resume:
        raise UserError(f"{out} already holds a run; pass --resume to continue it or --fresh to start over "
                        f"(the old run is kept beside it)")
    elif resume and not has_run:
        raise UserError(f"{out}: no run to resume (no {RUN_FILE}); drop --resume to start one")
    elif not has_run and out.exists() and any(out.iterdir()):
        raise UserError(f"{out} exists and is not a run folder; choose another --out")
    out.mkdir(parents=True, exist_ok=True)


def read_cells(out: Path) -> list[dict]:
    """Finished cells; a torn last line (the run was killed mid-write) is ignored."""
    path = out / CELLS_FILE
    if not path.exists():
        return []
    cells = []
    for line in path.read_text().splitlines():
        try:
            cells.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return cells


def append_cell(out: Path, cell: dict) -> None:
    with open(out / CELLS_FILE, "a") as fh:
        fh.write(json.dumps(cell) + "\n")
        fh.flush()
        os.fsync(fh.fileno())


def run_suite(suite_name: str, *, out: str | os.PathLike | None = None, methods: list[str] | None = None,
              metric_names: list[str] | None = None, data_root=None, resume: bool = False,
              fresh: bool = False, convention: str = "default", registry: Registry | None = None,
              argv: list[str] | None = None) -> Path:
    """Run one suite from ``datasets.yaml`` and write its report; returns the run folder."""
    import methods as method_registry
    import metrics as metric_registry

    registry = registry or Registry()
    suite = registry.suite(suite_name)
    method_names = methods or list(suite["methods"])
    metric_names = metric_names or list(suite["metrics"])
    for name in method_names:
        method_registry.get_method(name)
    for name in metric_names:
        metric_registry.get_metric(name)
    datasets = [registry.dataset(name, data_root) for name in suite["datasets"]]
    pairs = [(ds, p) for ds in datasets for p in ds.pairs(suite.get("pairs"))]

    out = Path(out) if out else REPO / "reports" / suite_name
    prepare_run_dir(out, resume=resume, fresh=fresh)
    run_info = {
        "suite": suite_name, "methods": method_names, "metrics": metric_names, "convention": convention,
        "datasets": {ds.name: {"description": ds.description, "location": ds.location,
                               "modalities": list(ds.modalities), "colour": ds.colour} for ds in datasets},
        "command": "python -m bench " + shlex.join(argv) if argv is not None else None,
        "python": platform.python_version(), "machine": f"{platform.machine()}, {os.cpu_count()} cores",
    }
    if resume:
        previous = json.loads((out / RUN_FILE).read_text())
        for key in ("suite", "convention"):
            if previous.get(key) != run_info[key]:
                raise UserError(f"{out}: cannot resume: the run used {key}={previous.get(key)!r}, "
                                f"this command asks for {run_info[key]!r}")
    run_info["started"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
    write_json(out / RUN_FILE, run_info)

    cells = read_cells(out)
    # rewrite without a torn last line, so that appended cells start on a line of their own
    write_text(out / CELLS_FILE, "".join(json.dumps(c) + "\n" for c in cells))
    done = {c["key"] for c in cells}
    todo = [(ds, p, m) for ds, p in pairs for m in method_names if cell_key(ds.name, p.name, m) not in done]
    if done:
        print(f"resuming: {len(done)} cells done, {len(todo)} to go", file=sys.stderr)
    loaded = {}
    for ds, pair, method in tqdm(todo, desc=f"{suite_name}", unit="cell", file=sys.stderr,
                                 disable=not todo):
        if (ds.name, pair.name) not in loaded:
            loaded = {(ds.name, pair.name): pair.load()}
        a, b = loaded[(ds.name, pair.name)]
        start = time.perf_counter()
        fused = method_registry.fuse(a, b, method)
        seconds = time.perf_counter() - start
        image_path = out / "fused" / ds.name / method / f"{pair.name}.png"
        write_image(image_path, fused, overwrite=True)
        scores = metric_registry.compute(a, b, fused, metric_names, convention=convention)
        append_cell(out, {"key": cell_key(ds.name, pair.name, method), "dataset": ds.name, "pair": pair.name,
                          "method": method, "seconds": seconds,
                          "fused": str(image_path.relative_to(out)), **scores})

    from bench.report import write_report
    write_report(out, datasets, pairs, method_names, metric_names)
    return out


def results_table(out: Path) -> pd.DataFrame:
    cells = read_cells(out)
    if not cells:
        raise UserError(f"{out}: no finished cells to report")
    return pd.DataFrame(cells).drop(columns=["key"]).sort_values(["dataset", "pair", "method"])


def load_fused(out: Path, dataset: str, method: str, pair: str) -> np.ndarray:
    return read_image(out / "fused" / dataset / method / f"{pair}.png")
