"""Equivariance analysis: does fusing transformed sources give the transformed fusion?

For a fusion method F, a pair (A, B) and a spatial transform T, the gap between F(T(A), T(B)) and
T(F(A, B)) says whether the method commutes with T -- the assumption that equivariant fusion (EMMA:
Zhao et al., "Equivariant multi-modality image fusion", CVPR 2024) builds into its training. Four
transforms: horizontal flip, 90-degree rotation, an integer circular shift of (5, 3) pixels and a
sub-pixel shift of half a pixel in both directions (bilinear, circular). Each gap is reported as

* the PSNR of F(T(A), T(B)) against T(F(A, B)) (luma, [0, 1]; +inf when identical), and
* the change of each suite metric, m(T(A), T(B), F(T(A), T(B))) - m(T(A), T(B), T(F(A, B))):
  comparing against the transformed fusion (not against m(A, B, F(A, B))) leaves out what the metric
  itself does under T, so only the method's gap remains.

Both sides are 8-bit, as the runner stores fused images: F(A, B) is the runner's own fused PNG of the
pair (its cell; nothing is fused twice) and F(T(A), T(B)) is rounded the same way. Flips, rotations and
integer shifts map 8-bit images to 8-bit images, so an exactly equivariant method scores +inf for them;
for the sub-pixel shift the rounding alone bounds the PSNR at about 59 dB (uniform rounding error).

Cost: one fusion per transform of the first ``pairs`` pair(s) of each dataset (default 1) for each
compared configuration (no parameter or epoch sweeps). A suite may set ``equivariance: {pairs: N,
crop: S}``: with ``crop`` the analysis runs on the central S x S crop (then F(A, B) of the crop is
fused here too), a quarter of the pixels at S = 128 for 256-pixel pairs, for suites with few pairs.
Rows are cached in ``equivariance.jsonl`` under the configuration's code version and the pair's data
fingerprint, like the runner's cells, so a resumed run recomputes only what changed; what is not cached
runs on the run's ``jobs`` worker processes.
"""
from __future__ import annotations

import hashlib
import html
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd

CACHE_FILE = "equivariance.jsonl"
SHIFT = (5, 3)
PSNR_CAP = 100.0    # dB shown in the figure for an exact match (+inf in the table)


def _half_pixel_shift(img: np.ndarray) -> np.ndarray:
    """Bilinear shift by half a pixel down and right, circular: the mean of the 2 x 2 neighbours."""
    return 0.25 * (img + np.roll(img, 1, axis=0) + np.roll(img, 1, axis=1) + np.roll(img, (1, 1), axis=(0, 1)))


TRANSFORMS = {
    "hflip": lambda img: img[:, ::-1],
    "rot90": lambda img: np.rot90(img, axes=(0, 1)),
    "shift": lambda img: np.roll(img, SHIFT, axis=(0, 1)),
    "subpixel": _half_pixel_shift,
}


def to_8bit(img: np.ndarray) -> np.ndarray:
    """The fused image as the runner stores it: rounded to 8 bits, back on [0, 1]."""
    from common.io import to_uint8
    return to_uint8(np.clip(img, 0.0, 1.0)).astype(np.float32) / 255.0


def psnr(reference: np.ndarray, test: np.ndarray) -> float:
    """PSNR in dB of two [0, 1] images (luma when colour); +inf when identical."""
    from common.colour import luma
    mse = float(np.mean((luma(reference).astype(np.float64) - luma(test).astype(np.float64)) ** 2))
    return float("inf") if mse == 0.0 else 10.0 * np.log10(1.0 / mse)


def central_crop(img: np.ndarray, size: int | None) -> np.ndarray:
    if size is None:
        return img
    h, w = img.shape[:2]
    size = min(int(size), h, w)
    r0, c0 = (h - size) // 2, (w - size) // 2
    return np.ascontiguousarray(img[r0:r0 + size, c0:c0 + size])


def transform_gaps(a, b, fused, fuse, metric_names, *, convention="default") -> list[dict]:
    """One row per transform: PSNR of F(T(A), T(B)) against T(F(A, B)) and each metric's change.

    ``fused`` is F(A, B) (8-bit, as stored); ``fuse(a, b)`` fuses a transformed pair.
    """
    from bench.scoring import score_fused

    rows = []
    for name, transform in TRANSFORMS.items():
        ta, tb = (np.ascontiguousarray(transform(img)) for img in (a, b))
        start = time.perf_counter()
        moved = to_8bit(fuse(ta, tb))
        seconds = time.perf_counter() - start
        expected = np.ascontiguousarray(transform(fused))
        ours, _ = score_fused(ta, tb, moved, metric_names, convention)
        reference, _ = score_fused(ta, tb, expected, metric_names, convention)
        rows.append({"transform": name, "psnr": psnr(expected, moved), "seconds": seconds,
                     **{f"delta_{m}": ours[m] - reference[m] for m in metric_names}})
    return rows


def _read_cache(path: Path) -> dict:
    rows = {}
    if path.exists():
        for line in path.read_text().splitlines():
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                continue                                   # a torn last line from a kill
            rows[row["key"]] = row
    return rows


def _gaps_task(a, b, fused, config, metric_names, convention) -> list[dict]:
    """One configuration on one pair (in a worker process): F(A, B) is fused here when not given."""
    import methods

    def fuse(x, y):
        return methods.fuse(x, y, config.method, **config.kwargs)

    if fused is None:
        fused = to_8bit(fuse(a, b))
    return transform_gaps(a, b, fused, fuse, metric_names, convention=convention)


def equivariance_table(out: Path, pairs, configs, metric_names, versions: dict, *, n_pairs: int = 1,
                       crop: int | None = None, convention: str = "default", jobs: int = 1) -> pd.DataFrame:
    """Gaps of every configuration on the first ``n_pairs`` pairs of each dataset (cached, see module doc);
    configurations not in the cache run on ``jobs`` worker processes, as the runner's cells do."""
    from concurrent.futures import as_completed

    from bench.pool import process_pool
    from bench.runner import load_fused

    cache_path = out / CACHE_FILE
    cache = _read_cache(cache_path)
    metric_tag = hashlib.sha1(",".join(metric_names).encode()).hexdigest()[:8]
    chosen, seen = [], {}
    for ds, pair in pairs:
        if seen.get(ds.name, 0) < n_pairs:
            chosen.append((ds, pair))
            seen[ds.name] = seen.get(ds.name, 0) + 1
    rows, tasks = [], []
    for ds, pair in chosen:
        fingerprint = pair.fingerprint()
        sources = None
        for config in configs:
            version = f"{versions.get(config.label)}|{fingerprint}|{metric_tag}|{convention}|crop={crop}"
            keys = {t: f"{ds.name}/{pair.name}/{config.label}/{t}" for t in TRANSFORMS}
            if all(cache.get(k, {}).get("version") == version for k in keys.values()):
                rows.extend(cache[k] for k in keys.values())
                continue
            if sources is None:
                sources = [central_crop(img, crop) for img in pair.load()]
            fused = None if crop is not None else load_fused(out, ds.name, config.label, pair.name)
            tag = dict(version=version, dataset=ds.name, pair=pair.name, config=config.label)
            tasks.append(((*sources, fused, config, list(metric_names), convention), keys, tag))

    def record(fh, new_rows, keys, tag):
        for row in new_rows:
            row.update(key=keys[row["transform"]], **tag)
            fh.write(json.dumps(row) + "\n")
            fh.flush()
            rows.append(row)

    with open(cache_path, "a") as fh:
        if jobs > 1 and len(tasks) > 1:
            with process_pool(min(jobs, len(tasks))) as pool:
                futures = {pool.submit(_gaps_task, *args): (keys, tag) for args, keys, tag in tasks}
                for future in as_completed(futures):
                    record(fh, future.result(), *futures[future])
        else:
            for args, keys, tag in tasks:
                record(fh, _gaps_task(*args), keys, tag)
    return pd.DataFrame(rows)


def equivariance_figure(table: pd.DataFrame, labels, path: Path):
    """Grouped bars: PSNR of each configuration under each transform, one panel per dataset."""
    import matplotlib.pyplot as plt

    from bench.report import _save

    datasets = list(dict.fromkeys(table["dataset"]))
    fig, axes = plt.subplots(len(datasets), 1, figsize=(max(6.0, 0.45 * len(labels) + 2), 2.6 * len(datasets)),
                             squeeze=False)
    width = 0.8 / len(TRANSFORMS)
    for ax, dataset in zip(axes[:, 0], datasets):
        means = table[table["dataset"] == dataset].groupby(["config", "transform"])["psnr"].mean()
        for k, transform in enumerate(TRANSFORMS):
            values = [min(means.get((label, transform), np.nan), PSNR_CAP) for label in labels]
            ax.bar(np.arange(len(labels)) + (k - 1.5) * width, values, width, label=transform)
        ax.set_xticks(np.arange(len(labels)), labels, rotation=60, ha="right", fontsize=6)
        ax.set_ylabel("PSNR dB", fontsize=7)
        ax.set_title(f"{dataset}: F(T(A), T(B)) vs T(F(A, B)) (exact = {PSNR_CAP:.0f} dB)", fontsize=8)
        ax.tick_params(axis="y", labelsize=6)
    axes[0, 0].legend(fontsize=6, ncol=4)
    fig.tight_layout(pad=0.3)
    return _save(fig, path)


def _fmt_psnr(value: float) -> str:
    return "∞" if np.isinf(value) else "—" if not np.isfinite(value) else f"{value:.1f}"


def equivariance_html(table: pd.DataFrame, labels, metric_names, results: pd.DataFrame) -> str:
    """The section's table: mean PSNR per transform, and per metric the largest |change| over the
    transforms as a percentage of the configuration's mean score; then the rank correlation between
    equivariance and the objective ranking."""
    from scipy.stats import spearmanr

    import metrics

    from bench import analysis

    parts = []
    for dataset in dict.fromkeys(table["dataset"]):
        rows = table[table["dataset"] == dataset]
        psnrs = rows.groupby(["config", "transform"])["psnr"].mean()
        means = results[results["dataset"] == dataset].groupby("config")[list(metric_names)].mean()
        present = [label for label in labels if label in set(rows["config"])]
        head = "".join(f"<th>{t}</th>" for t in TRANSFORMS) + "".join(f"<th>|Δ{html.escape(m)}| %</th>"
                                                                      for m in metric_names)
        body = []
        for label in present:
            cells = [f"<td>{_fmt_psnr(psnrs.get((label, t), np.nan))}</td>" for t in TRANSFORMS]
            mine = rows[rows["config"] == label]
            for m in metric_names:
                scale = abs(means.at[label, m]) if label in means.index else np.nan
                worst = mine[f"delta_{m}"].abs().max()
                cells.append(f"<td>{100 * worst / scale:.2f}</td>" if scale and np.isfinite(scale) else "<td>—</td>")
            body.append(f"<tr><td>{html.escape(label)}</td>{''.join(cells)}</tr>")
        hib = {m: metrics.get_metric(m).higher_is_better for m in metric_names}
        ranks = analysis.average_ranks(results, dataset, list(metric_names), present, hib)
        capped = [np.mean([min(psnrs.get((label, t), np.nan), PSNR_CAP) for t in TRANSFORMS]) for label in present]
        rank_values = [ranks.get(label, np.nan) for label in present]
        ok = [i for i in range(len(present)) if np.isfinite(capped[i]) and np.isfinite(rank_values[i])]
        corr = "—"
        if len(ok) >= 3:
            rho, p = spearmanr([capped[i] for i in ok], [-rank_values[i] for i in ok])
            corr = f"ρ = {rho:.2f} (p = {p:.2g}, {len(ok)} methods)"
        parts.append(f"<h3>{html.escape(dataset)}</h3><table><tr><th>method</th>{head}</tr>{''.join(body)}</table>"
                     f"<p class='note'>Spearman correlation of mean equivariance PSNR (capped at "
                     f"{PSNR_CAP:.0f} dB) with the objective table's average rank (better rank = higher): {corr}.</p>")
    return "".join(parts)


def equivariance_section(out: Path, pairs, configs, metric_names, results: pd.DataFrame, suite: dict,
                         run: dict) -> str:
    """Compute (or reuse) the gaps, write ``tables/equivariance.csv`` and the figure; return the HTML section."""
    from common.io import write_text

    options = suite.get("equivariance", {})
    if options is False:
        return ""
    options = options or {}
    # published outputs (kind: precomputed) exist for the given pairs only: they cannot fuse T(A), T(B)
    precomputed = set(run.get("precomputed") or {})
    configs = [c for c in configs if c.method not in precomputed]
    start = time.perf_counter()
    table = equivariance_table(out, pairs, configs, metric_names, run.get("code_versions") or {},
                               n_pairs=int(options.get("pairs", 1)), crop=options.get("crop"),
                               convention=run.get("convention", "default"), jobs=int(run.get("jobs") or 1))
    if table.empty:
        return ""
    labels = [c.label for c in configs]
    write_text(out / "tables" / "equivariance.csv",
               table.drop(columns=["key", "version"]).to_csv(index=False))
    figure = equivariance_figure(table, labels, out / "figures" / "equivariance.png")
    elapsed = time.perf_counter() - start
    fusing = float(table["seconds"].sum())
    cells = float(results["seconds"].sum()) if "seconds" in results else float("nan")
    crop = options.get("crop")
    where = f"the central {crop}x{crop} crop of " if crop else ""
    return (f"<h2 id='equivariance'>Equivariance analysis</h2>"
            f"<p>Is F(T(A), T(B)) = T(F(A, B))? For {where}the first {int(options.get('pairs', 1))} pair(s) of "
            f"each dataset and each compared method: horizontal flip, 90° rotation, circular shift by "
            f"{SHIFT} px and a half-pixel bilinear shift. PSNR in dB (∞: identical; 8-bit rounding alone bounds "
            f"the sub-pixel column at about 59 dB); |Δm| %: the largest change of metric m over the four "
            f"transforms, m(TA, TB, F(TA, TB)) − m(TA, TB, T F(A, B)), as a percentage of the method's mean "
            f"score. All rows in <a href='tables/equivariance.csv'>tables/equivariance.csv</a>.</p>"
            f"<p><img src='{figure.relative_to(out).as_posix()}' alt='equivariance PSNR per method and transform'></p>"
            f"{equivariance_html(table, labels, metric_names, results)}"
            f"<p class='note'>This section took {elapsed:.1f} s here ({fusing:.1f} s of it fusing; rows reused "
            f"from <code>{CACHE_FILE}</code> cost nothing); the suite's cells took {cells:.1f} s of fusion.</p>")
