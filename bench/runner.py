"""Run a suite: datasets x pairs x method configurations, every fused image saved, every metric recorded.

Nothing is lost and nothing is computed twice:
* each finished cell (dataset, pair, configuration) is appended to ``cells.jsonl`` and flushed to disk
  by the process that computed it, before the next starts; fused images are written atomically; workers
  end with the run (``bench.pool``), so nothing is written into the folder after the run is killed;
* a cell is keyed by its configuration (method, parameters, epoch), a fingerprint of its data (the files'
  contents, or the phantom generator and its inputs) and the version of the code it ran (a hash of the
  method's and the metrics' source files). ``--resume`` reuses every cell whose key still matches, so a
  killed run continues where it stopped and a changed method or file is recomputed;
* pairs run in parallel on a process pool (``jobs``).
The tables, figures and ``index.html`` are rebuilt from ``cells.jsonl`` at the end (``bench.report``).
"""
from __future__ import annotations

import hashlib
import json
import os
import platform
import shlex
import sys
import time
from concurrent.futures import as_completed
from datetime import datetime, timezone
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm

from bench.datasets import REPO, Registry
from common.errors import UserError
from common.io import read_image, write_image, write_json, write_text
from bench.pool import process_pool
from bench.scoring import score_fused
from bench.sweeps import Config, expand_methods

CELLS_FILE = "cells.jsonl"
RUN_FILE = "run.json"


def prepare_run_dir(out: Path, *, resume: bool, fresh: bool) -> None:
    """Create ``out`` for a new run, or check it for ``resume``; ``fresh`` moves an old run aside."""
    if resume and fresh:
        raise UserError("--resume and --fresh exclude each other")
    if out.exists() and not out.is_dir():
        raise UserError(f"{out}: is a file, not a run folder; choose another --out")
    has_run = (out / RUN_FILE).exists() or (out / CELLS_FILE).exists()
    if has_run and fresh:
        stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
        aside = out.with_name(f"{out.name}.prev-{stamp}")
        out.rename(aside)
        print(f"note: moved the previous run to {aside}", file=sys.stderr)
    elif has_run and not resume:
        raise UserError(f"{out} already holds a run; pass --resume to continue it (finished cells are reused) "
                        f"or --fresh to start over (the old run is kept beside it)")
    elif resume and not has_run:
        raise UserError(f"{out}: no run to resume (no {RUN_FILE}); drop --resume to start one")
    elif not has_run and out.exists() and any(out.iterdir()):
        raise UserError(f"{out} exists and is not a run folder; choose another --out")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:     # a file where a parent folder should be, no permission
        raise UserError(f"{out}: cannot create the run folder ({exc.strerror})") from None
    if resume:   # temporary files of atomic writes that a kill interrupted (common.io._atomic_write)
        for stale in out.rglob(".*.tmp"):
            stale.unlink(missing_ok=True)


def read_cells(out: Path) -> list[dict]:
    """Finished cells, the last one per key; a torn last line (a kill mid-write) is ignored."""
    path = out / CELLS_FILE
    if not path.exists():
        return []
    cells = {}
    for line in path.read_text().splitlines():
        try:
            cell = json.loads(line)
        except json.JSONDecodeError:
            continue
        cells[cell["key"]] = cell
    return list(cells.values())


def append_cell(out: Path, cell: dict) -> None:
    """Append one cell as one line, durably. Workers append concurrently: one ``write`` on an
    ``O_APPEND`` descriptor puts the whole line at the end of the file, never interleaved with another."""
    line = (json.dumps(cell) + "\n").encode()
    fd = os.open(out / CELLS_FILE, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
    try:
        written = os.write(fd, line)
        if written != len(line):       # a full disk: leave a torn line, which read_cells skips
            raise OSError(f"{out / CELLS_FILE}: short write ({written} of {len(line)} bytes)")
        os.fsync(fd)
    finally:
        os.close(fd)


def _source_files(module_name: str) -> list[Path]:
    path = Path(sys.modules[module_name].__file__)
    return sorted(path.parent.rglob("*.py")) if path.name == "__init__.py" else [path]


@lru_cache(maxsize=None)
def code_version(method: str) -> str:
    """Hash of the sources a cell of ``method`` depends on: its module, the registry, colour and metrics."""
    import methods
    import metrics

    fn = methods.get_method(method).fn
    files = _source_files(fn.__module__) + _source_files("methods.registry") + _source_files("common.colour")
    files += sorted(Path(metrics.__file__).parent.rglob("*.py"))
    if methods.get_method(method).trainable:
        # shipped weights are data the cells depend on, like code
        files += sorted((Path(methods.__file__).parent / "weights").glob("*.safetensors"))
    return _digest(files)


def _digest(files) -> str:
    digest = hashlib.sha1()
    for path in files:
        digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


def config_version(config: Config) -> str:
    """``code_version`` of the method, plus the weights file a configuration names (a retrained checkpoint
    under the same name must not reuse the old cells)."""
    weights = config.kwargs.get("weights")
    if weights and Path(weights).is_file():
        return code_version(config.method) + "+" + _digest([Path(weights)])[:8]
    return code_version(config.method)


def cell_key(dataset: str, pair: str, config: Config) -> str:
    return f"{dataset}/{pair}/{config.label}"


def fused_path(out: Path, dataset: str, label: str, pair: str) -> Path:
    safe = "".join(ch if ch.isalnum() or ch in "-_.=@," else "_" for ch in label)
    return out / "fused" / dataset / safe / f"{pair}.png"


def _run_pair(task: dict) -> int:
    """Fuse one pair with every configuration still to do, appending each finished cell to ``cells.jsonl``
    at once (from the worker process itself, so a kill loses at most the cell in progress); returns the
    number of cells recorded.

    A configuration that fails stops the pair with its dataset, pair and configuration named: a
    ``UserError`` keeps its one line with that prefix, any other exception gets it as a note. The cells
    finished before it stay recorded.
    """
    import methods

    registry = Registry(Path(task["registry"]))
    dataset = registry.dataset(task["dataset"], task["data_root"], announce=False)
    pair = next(p for p in dataset.pairs() if p.name == task["pair"])
    where = f"{dataset.name}/{pair.name}"
    try:
        a, b = pair.load()
    except UserError as exc:
        raise UserError(f"{where}: {exc}") from None
    out = Path(task["out"])
    precomputed = registry.precomputed()
    for config in task["configs"]:
        where = f"{dataset.name}/{pair.name}, method {config.label}"
        try:
            start = time.perf_counter()
            if config.method in precomputed:      # published outputs: read, not computed (no time to report)
                fused, seconds = precomputed[config.method].load(dataset.name, pair.name, a.shape[:2]), None
            else:
                fused = methods.fuse(a, b, config.method, **config.kwargs)
                seconds = time.perf_counter() - start
            scores, metric_seconds = score_fused(a, b, fused, task["metrics"], task["convention"])
        except UserError as exc:
            raise UserError(f"{where}: {exc}") from None
        except Exception as exc:
            exc.add_note(f"(while running {where})")
            raise
        path = fused_path(out, dataset.name, config.label, pair.name)
        write_image(path, fused, overwrite=True)
        append_cell(out, {"key": cell_key(dataset.name, pair.name, config), "dataset": dataset.name,
                          "pair": pair.name, "method": config.method, "config": config.label,
                          "params": config.params_json, "epoch": config.epoch, "seconds": seconds,
                          "metric_seconds": metric_seconds,
                          "data": task["fingerprint"], "code": task["code"][config.label],
                          "fused": path.relative_to(out).as_posix(), **scores})
    return len(task["configs"])


def _train_entries_used(suite: dict, configs) -> dict:
    """The suite with only the training runs that a selected configuration fuses with (its ``weights``
    lie in the run's ``out`` folder): ``--methods average,dwt`` does not train the suite's GAN."""
    def inside(weights, out) -> bool:
        parts = Path(str(out)).parts
        return bool(weights) and Path(str(weights)).parts[:len(parts)] == parts
    used = [e for e in suite.get("train") or []
            if isinstance(e, dict) and any(inside(c.kwargs.get("weights"), e.get("out")) for c in configs)]
    return {**suite, "train": used}


def run_suite(suite_name: str, *, out: str | os.PathLike | None = None, methods: list[str] | None = None,
              metric_names: list[str] | None = None, data_root=None, resume: bool = False,
              fresh: bool = False, convention: str = "default", jobs: int = 1,
              registry: Registry | None = None, argv: list[str] | None = None) -> Path:
    """Run one suite from ``datasets.yaml`` and write its report; returns the run folder."""
    import methods as method_registry
    import metrics as metric_registry

    registry = registry or Registry()
    suite = registry.suite(suite_name)
    configs = expand_methods(methods or suite["methods"])
    metric_names = metric_names or list(suite["metrics"])
    precomputed = registry.precomputed()
    configs, skipped = _runnable(configs, precomputed, explicit=methods is not None)
    for config in configs:       # every parameter and grid value, before a run folder exists
        if config.method in precomputed:
            if config.kwargs:
                raise UserError(f"suite {suite_name!r}: precomputed method {config.method!r} takes no parameters")
            continue
        try:
            method_registry.get_method(config.method).check_params(config.kwargs)
        except UserError as exc:
            raise UserError(f"suite {suite_name!r}: {exc}") from None
    for name in metric_names:
        metric_registry.get_metric(name)
    if convention not in metric_registry.CONVENTIONS:
        raise UserError(f"unknown metric convention {convention!r} (known: {', '.join(metric_registry.CONVENTIONS)})")
    datasets = [registry.dataset(name, data_root) for name in suite["datasets"]]
    pairs = [(ds, p) for ds in datasets for p in ds.pairs(suite.get("pairs"))]
    used = [name for name in precomputed if name in {c.method for c in configs}]
    for name in used:
        for ds in datasets:
            precomputed[name].check_names(ds.name, [p.name for p in ds.pairs()])
    if suite.get("reference") in skipped:
        suite["reference"] = None       # the report compares against its first method instead

    out = Path(out) if out else REPO / "reports" / suite_name
    prepare_run_dir(out, resume=resume, fresh=fresh)
    from bench.training import ensure_suite_trained
    training = ensure_suite_trained(suite if methods is None else _train_entries_used(suite, configs))
    versions = {c.label: precomputed[c.method].version([ds.name for ds in datasets]) if c.method in precomputed
                else config_version(c) for c in configs}
    run_info = {
        "suite": suite_name, "configs": [c.label for c in configs], "metrics": metric_names,
        "convention": convention,
        "datasets": {ds.name: {"description": ds.description, "location": ds.location,
                               "modalities": list(ds.modalities), "colour": ds.colour,
                               "split": registry.dataset_specs[ds.name].get("split")} for ds in datasets},
        "command": "python -m bench " + shlex.join(argv) if argv is not None else None,
        "code_versions": versions, "skipped": skipped, "training": training,
        "precomputed": {name: {"description": precomputed[name].description, "citation": precomputed[name].citation,
                               "folders": {ds.name: str(precomputed[name].folder(ds.name)) for ds in datasets}}
                        for name in used}, "python": platform.python_version(), "numpy": np.__version__,
        "machine": f"{platform.machine()}, {os.cpu_count()} cores", "jobs": jobs,
    }
    if resume:
        previous = json.loads((out / RUN_FILE).read_text())
        if previous.get("suite") != suite_name:
            raise UserError(f"{out}: holds a run of suite {previous.get('suite')!r}, not {suite_name!r}")
    run_info["started"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
    write_json(out / RUN_FILE, run_info)

    compute_cells(out, registry, pairs, configs, versions, metric_names, convention=convention,
                  data_root=data_root, jobs=jobs, resume=resume, desc=suite_name)

    from bench.report import write_report
    write_report(out, datasets, pairs, configs, metric_names, suite)
    return out


def compute_cells(out: Path, registry: Registry, pairs, configs: list[Config], versions: dict, metric_names,
                  *, convention: str = "default", data_root=None, jobs: int = 1, resume: bool = False,
                  desc: str = "cells") -> int:
    """Fuse and score every (pair, configuration) cell not yet in ``out/cells.jsonl`` with a matching data
    fingerprint, code version (``versions[label]``) and metric set; returns the number computed.

    The one place cells are computed, for suites (``run_suite``) and for other tables that want the same
    cache, resumption and process pool (``bench.gan_targets``)."""
    cells = read_cells(out)
    # rewrite without a torn last line, so that appended cells start on a line of their own
    write_text(out / CELLS_FILE, "".join(json.dumps(c) + "\n" for c in cells))
    done = {(c["key"], c.get("data"), c.get("code"), tuple(k in c for k in metric_names)) for c in cells}
    tasks, n_todo = [], 0
    for ds, pair in tqdm(pairs, desc="checking cache", unit="pair", file=sys.stderr, leave=False,
                         disable=not resume):
        fingerprint = pair.fingerprint()
        todo = [c for c in configs if (cell_key(ds.name, pair.name, c), fingerprint, versions[c.label],
                                       (True,) * len(metric_names)) not in done]
        if todo:
            n_todo += len(todo)
            tasks.append({"registry": str(registry.path), "dataset": ds.name, "pair": pair.name,
                          "data_root": str(data_root) if data_root else None, "out": str(out),
                          "configs": todo, "metrics": metric_names, "convention": convention,
                          "fingerprint": fingerprint, "code": versions})
    if resume:
        print(f"resuming: {len(pairs) * len(configs) - n_todo} cells reused, {n_todo} to compute", file=sys.stderr)
    with tqdm(total=n_todo, desc=desc, unit="cell", file=sys.stderr, disable=not n_todo) as bar:
        if jobs > 1 and len(tasks) > 1:
            with process_pool(jobs) as pool:
                futures = [pool.submit(_run_pair, t) for t in tasks]
                try:
                    for future in as_completed(futures):
                        bar.update(future.result())
                except BaseException:
                    # a failed pair (or ^C) ends the run: pairs not started are dropped; the ones running
                    # finish and record their cells, which a --resume reuses
                    pool.shutdown(wait=True, cancel_futures=True)
                    raise
        else:
            for task in tasks:
                bar.update(_run_pair(task))
    return n_todo


def _runnable(configs: list[Config], precomputed: dict, *, explicit: bool) -> tuple[list[Config], dict]:
    """The configurations that can run here, and {label: reason} for those left out.

    A method's ``unavailable`` hook (the deep peers: published weights not in the cache) leaves its
    configurations out of a suite's own list with a notice and a line in the report; a method asked for
    with ``--methods`` is not left out: it fails with the reason instead."""
    import methods

    skipped = {}
    for config in configs:
        method = methods.METHODS.get(config.method) if config.method not in precomputed else None
        reason = method.unavailable(**config.kwargs) if method is not None and method.unavailable else None
        if reason and explicit:
            raise UserError(reason)
        if reason:
            skipped[config.label] = reason
            print(f"note: skipping {config.label}: {reason}", file=sys.stderr)
    return [c for c in configs if c.label not in skipped], skipped


def results_table(out: Path, configs: list[Config] | None = None, datasets=None) -> pd.DataFrame:
    """The tidy results of a run: one row per dataset, pair and configuration (only those asked for)."""
    cells = read_cells(out)
    if not cells:
        raise UserError(f"{out}: no finished cells to report")
    table = pd.DataFrame(cells).drop(columns=["key"])
    if configs is not None:
        table = table[table["config"].isin([c.label for c in configs])]
    if datasets is not None:
        table = table[table["dataset"].isin([d.name for d in datasets])]
    order = {c.label: i for i, c in enumerate(configs or [])}
    table = table.assign(_order=table["config"].map(order)).sort_values(["dataset", "pair", "_order"])
    return table.drop(columns="_order").reset_index(drop=True)


def load_fused(out: Path, dataset: str, label: str, pair: str) -> np.ndarray:
    return read_image(fused_path(out, dataset, label, pair))
