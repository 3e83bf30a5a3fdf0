"""Score a folder of fused images against two folders of sources: ``evaluate_folders`` (the CLI calls it)."""
from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd
from tqdm import tqdm

from common.errors import UserError, first_few
from common.io import images_by_stem, read_image
from bench.pool import process_pool
from bench.scoring import score_fused


def _pairs(a_dir: Path, b_dir: Path, f_dir: Path) -> list[tuple[str, Path, Path, Path]]:
    """Triples matched by file stem; every fused image needs both sources."""
    for label, folder in (("A", a_dir), ("B", b_dir), ("fused", f_dir)):
        if not folder.is_dir():
            raise UserError(f"{label} folder {folder} does not exist")
    by_stem = [images_by_stem(d) for d in (a_dir, b_dir, f_dir)]
    a_imgs, b_imgs, f_imgs = by_stem
    if not f_imgs:
        raise UserError(f"fused folder {f_dir} holds no images")
    unpaired = sorted(s for s in f_imgs if s not in a_imgs or s not in b_imgs)
    if unpaired:
        raise UserError(f"{len(unpaired)} fused image(s) in {f_dir} lack a source in {a_dir} or {b_dir}: "
                        f"{first_few(unpaired)}")
    not_fused = sorted(s for s in a_imgs if s in b_imgs and s not in f_imgs)
    if not_fused:
        print(f"note: {len(not_fused)} source pair(s) have no fused image in {f_dir} and are not scored: "
              f"{first_few(not_fused)}", file=sys.stderr)
    return [(s, a_imgs[s], b_imgs[s], f_imgs[s]) for s in sorted(f_imgs)]


def _score(job):
    stem, a_path, b_path, f_path, names, convention = job
    try:
        values, _ = score_fused(read_image(a_path), read_image(b_path), read_image(f_path), names, convention)
    except UserError as exc:
        return {"name": stem, "error": f"{stem}: {exc}"}
    return {"name": stem, **values}


def evaluate_folders(a_dir, b_dir, f_dir, names=None, convention: str = "default", jobs: int = 1,
                     failures: list[str] | None = None) -> pd.DataFrame:
    """One row per fused image (index: file stem), one column per metric.

    Pairs are matched by file name stem; a fused image without both sources raises ``UserError``.
    An image that cannot be scored (unreadable, sizes that differ) raises its ``UserError`` once all
    images are done, or, when a ``failures`` list is given, is left out of the table and its one-line
    reason appended there, so that the caller can keep what was scored. ``jobs > 1`` spreads the
    images over a process pool. Progress goes to stderr.
    """
    import metrics

    if convention not in metrics.CONVENTIONS:
        raise UserError(f"unknown metric convention {convention!r} (known: {', '.join(metrics.CONVENTIONS)})")
    names = list(names) if names else list(metrics.METRICS)
    for n in names:
        metrics.get_metric(n)
    jobs_list = [(s, a, b, f, names, convention)
                 for s, a, b, f in _pairs(Path(a_dir), Path(b_dir), Path(f_dir))]
    bar = dict(total=len(jobs_list), desc="metrics", unit="img", file=sys.stderr)
    if jobs > 1 and len(jobs_list) > 1:
        with process_pool(jobs) as pool:
            rows = list(tqdm(pool.map(_score, jobs_list), **bar))
    else:
        rows = [_score(j) for j in tqdm(jobs_list, **bar)]
    failed = [row["error"] for row in rows if "error" in row]
    if failed and failures is None:
        raise UserError(failed[0] + (f" (and {len(failed) - 1} more)" if len(failed) > 1 else ""))
    if failures is not None:
        failures.extend(failed)
    scored = [row for row in rows if "error" not in row]
    return pd.DataFrame(scored, columns=["name", *names]).set_index("name")
