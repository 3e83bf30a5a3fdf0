"""The run report: results.csv, summary.csv, one figure grid per dataset, and index.html.

``index.html`` is self-contained apart from the PNGs beside it (no scripts, no network) and refers only
to files this module has just written.
"""
from __future__ import annotations

import html
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from bench.io import write_bytes, write_text  # noqa: E402

GRID_PAIRS = 4


def summarise(results: pd.DataFrame, metric_names: list[str]) -> pd.DataFrame:
    """Mean and standard deviation (ddof 1) per dataset x method for each metric and the time."""
    cols = metric_names + ["seconds"]
    grouped = results.groupby(["dataset", "method"], sort=False)[cols]
    mean, std = grouped.mean(), grouped.std(ddof=1)
    summary = pd.concat({"mean": mean, "std": std}, axis=1)
    summary.columns = [f"{metric}_{stat}" for stat, metric in summary.columns]
    summary.insert(0, "n", grouped.size())
    return summary.reset_index()


def figure_grid(out: Path, dataset, pairs, method_names: list[str]) -> Path:
    """Sources then each method's fused image, the same pairs in every column."""
    from bench.runner import load_fused

    pairs = pairs[:GRID_PAIRS]
    labels = [f"A: {dataset.modalities[0]}", f"B: {dataset.modalities[1]}"] + method_names
    fig, axes = plt.subplots(len(pairs), len(labels), figsize=(1.9 * len(labels), 1.9 * len(pairs) + 0.3),
                             squeeze=False)
    for row, pair in enumerate(pairs):
        a, b = pair.load()
        panels = [a, b] + [load_fused(out, dataset.name, m, pair.name) for m in method_names]
        for col, img in enumerate(panels):
            ax = axes[row, col]
            ax.imshow(img, cmap="gray" if img.ndim == 2 else None, vmin=0, vmax=1, interpolation="nearest")
            ax.set_xticks([]), ax.set_yticks([])
            if row == 0:
                ax.set_title(labels[col], fontsize=8)
            if col == 0:
                ax.set_ylabel(pair.name, fontsize=8)
    fig.tight_layout(pad=0.3)
    path = out / "figures" / f"grid_{dataset.name}.png"
    from io import BytesIO
    buf = BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    write_bytes(path, buf.getvalue())
    return path


def _summary_html(summary: pd.DataFrame, dataset: str, metric_names: list[str]) -> str:
    import metrics

    rows = summary[summary["dataset"] == dataset]
    best = {}
    for m in metric_names:
        col = rows[f"{m}_mean"]
        if col.notna().any():
            best[m] = col.idxmax() if metrics.get_metric(m).higher_is_better else col.idxmin()
    head = "".join(f"<th>{html.escape(m)} {'↑' if metrics.get_metric(m).higher_is_better else '↓'}</th>"
                   for m in metric_names)
    body = []
    for idx, row in rows.iterrows():
        cells = []
        for m in metric_names:
            text = f"{row[f'{m}_mean']:.4g} ± {row[f'{m}_std']:.2g}"
            cells.append(f"<td><b>{text}</b></td>" if best.get(m) == idx else f"<td>{text}</td>")
        body.append(f"<tr><td>{html.escape(row['method'])}</td><td>{row['n']}</td>{''.join(cells)}"
                    f"<td>{1000 * row['seconds_mean']:.1f}</td></tr>")
    return (f"<table><tr><th>method</th><th>n</th>{head}<th>ms / pair</th></tr>"
            + "".join(body) + "</table>")


def write_report(out: Path, datasets, pairs, method_names: list[str], metric_names: list[str]) -> Path:
    from bench.runner import RUN_FILE, results_table

    results = results_table(out)
    write_text(out / "results.csv", results.to_csv(index=False))
    summary = summarise(results, metric_names)
    write_text(out / "summary.csv", summary.to_csv(index=False))
    run = json.loads((out / RUN_FILE).read_text())

    sections = []
    for ds in datasets:
        ds_pairs = [p for d, p in pairs if d.name == ds.name]
        grid = figure_grid(out, ds, ds_pairs, method_names)
        colour_note = (" Metrics are computed on the luma Y (BT.601) of the colour source and of the fused image."
                       if ds.colour else "")
        sections.append(
            f"<h2 id='{ds.name}'>{html.escape(ds.name)}</h2>"
            f"<p>{html.escape(ds.description)}. Source: {html.escape(ds.location)}; "
            f"{len(ds_pairs)} pairs.{colour_note}</p>"
            f"<h3>Objective analysis</h3>{_summary_html(summary, ds.name, metric_names)}"
            f"<h3>Subjective analysis</h3><p><img src='{grid.relative_to(out).as_posix()}' "
            f"alt='figure grid {html.escape(ds.name)}'></p>")
    toc = "".join(f"<li><a href='#{ds.name}'>{html.escape(ds.name)}</a></li>" for ds in datasets)
    command = html.escape(run.get("command") or "")
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Fusion benchmark: {html.escape(run['suite'])}</title>
<style>
body {{ font-family: sans-serif; max-width: 1200px; margin: 2em auto; padding: 0 1em; color: #222; }}
table {{ border-collapse: collapse; margin: 0.5em 0 1.5em; font-size: 0.9em; }}
th, td {{ border: 1px solid #bbb; padding: 0.25em 0.6em; text-align: right; }}
th:first-child, td:first-child {{ text-align: left; }}
img {{ max-width: 100%; }}
code {{ background: #f3f3f3; padding: 0.1em 0.3em; }}
</style></head><body>
<h1>Fusion benchmark — suite <code>{html.escape(run['suite'])}</code></h1>
<p>Command: <code>{command}</code><br>
Metric convention: <code>{html.escape(run['convention'])}</code>; values are mean ± standard deviation over pairs;
best per column in bold (↑ higher is better, ↓ lower is better). Started {html.escape(run['started'])} on
{html.escape(run['machine'])}, Python {html.escape(run['python'])}.</p>
<p>Tables: <a href="results.csv">results.csv</a> (one row per dataset, pair, method),
<a href="summary.csv">summary.csv</a>.</p>
<ul>{toc}</ul>
{''.join(sections)}
</body></html>
"""
    return write_text(out / "index.html", page)
