"""The run report, mirroring a fusion paper's experiment section, as HTML and PNG.

Sections per dataset: objective analysis (mean ± std, best in bold, average rank, Friedman test,
Wilcoxon–Holm marks against a reference configuration; also Markdown and LaTeX files), subjective analysis
(figure grid with the same zoomed inset on every panel, optional difference maps) and limitation analysis
(each configuration's worst pairs per headline metric). Across datasets: parametric analysis (metric vs each
swept parameter), epoch analysis (metric vs checkpoint epoch) and algorithm analysis (parameters, MACs,
median time per pair, peak memory). ``index.html`` uses no scripts and no network and refers only to files
written here.
"""
from __future__ import annotations

import html
import json
from io import BytesIO
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.patches import Rectangle  # noqa: E402

from bench import analysis  # noqa: E402
from common.io import write_bytes, write_json, write_text  # noqa: E402
from metrics._allocator import release_freed_memory  # noqa: E402
from metrics.sets import HEADLINE  # noqa: E402

GRID_PAIRS = 4
GRID_COLUMNS = 9


def _save(fig, path: Path) -> Path:
    buf = BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    return write_bytes(path, buf.getvalue())


def _show(ax, img, title=None, ylabel=None):
    ax.imshow(img, cmap="gray" if img.ndim == 2 else None, vmin=0, vmax=1, interpolation="nearest")
    ax.set_xticks([]), ax.set_yticks([])
    if title:
        ax.set_title(title, fontsize=7)
    if ylabel:
        ax.set_ylabel(ylabel, fontsize=7)


def show_with_inset(ax, img, box, title=None, ylabel=None):
    """The grids' one panel: ``img`` with ``box`` = (row, col, size) outlined and magnified in its lower-right
    corner (every figure grid of the suite draws its panels with this)."""
    _show(ax, img, title, ylabel)
    r0, c0, size = box
    crop = img[r0:r0 + size, c0:c0 + size]
    ax.add_patch(Rectangle((c0 - 0.5, r0 - 0.5), size, size, fill=False, ec="#ff3", lw=0.8))
    zoom = ax.inset_axes([0.56, 0.0, 0.44, 0.44])
    zoom.imshow(crop, cmap="gray" if crop.ndim == 2 else None, vmin=0, vmax=1, interpolation="nearest")
    zoom.set_xticks([]), zoom.set_yticks([])
    for spine in zoom.spines.values():
        spine.set_edgecolor("#ff3")


# --- subjective --------------------------------------------------------------------------------------------

def figure_grid(out: Path, dataset, pairs, labels: list[str], inset=None, difference_to: str | None = None) -> Path:
    """Sources then each configuration, the same pairs in every column, each panel with the same inset.

    The inset box (``inset`` = [row, col, size] or chosen per pair where the fused images differ most) is
    outlined on the panel and magnified ×2 in its lower-right corner. With ``difference_to``, a second row
    per pair shows each fused image minus that configuration's (signed, ±0.25 range).
    """
    from bench.runner import load_fused

    pairs = pairs[:GRID_PAIRS]
    header = [f"A: {dataset.modalities[0]}", f"B: {dataset.modalities[1]}"] + labels
    # many methods wrap onto further rows (GRID_COLUMNS panels a row) instead of one very wide strip
    ncols = min(len(header), GRID_COLUMNS)
    image_rows = -(-len(header) // ncols)
    block = image_rows * (2 if difference_to else 1)
    fig, axes = plt.subplots(len(pairs) * block, ncols,
                             figsize=(1.9 * ncols, 1.9 * len(pairs) * block + 0.3), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for i, pair in enumerate(pairs):
        a, b = pair.load()
        fused = [load_fused(out, dataset.name, label, pair.name) for label in labels]
        h, w = a.shape[:2]
        if inset:
            r0, c0, size = inset
        else:
            size = max(8, min(h, w) // 5)
            r0, c0 = analysis.most_different_box(fused, size)
        for j, img in enumerate([a, b] + fused):
            ax = axes[i * block + j // ncols, j % ncols]
            show_with_inset(ax, img, (r0, c0, size), header[j] if i == 0 or j >= ncols else None,
                            pair.name if j % ncols == 0 else None)
        if difference_to:
            ref = fused[labels.index(difference_to)]
            from common.colour import luma
            for j in range(2, len(header)):
                ax = axes[i * block + image_rows + j // ncols, j % ncols]
                ax.imshow(luma(fused[j - 2]) - luma(ref), cmap="coolwarm", vmin=-0.25, vmax=0.25)
                ax.set_title(f"{labels[j - 2]} minus {difference_to}", fontsize=6)
    fig.tight_layout(pad=0.3)
    return _save(fig, out / "figures" / f"grid_{dataset.name}.png")


# --- objective ---------------------------------------------------------------------------------------------

def objective_table(results, summary, dataset: str, labels, metric_names, reference):
    """Rows of the objective table: per configuration mean ± std with best flag, mark and average rank."""
    import metrics

    hib = {m: metrics.get_metric(m).higher_is_better for m in metric_names}
    rows = summary[summary["dataset"] == dataset].set_index("config").reindex(labels).dropna(how="all")
    ranks = analysis.average_ranks(results, dataset, metric_names, list(rows.index), hib)
    table = {"config": list(rows.index), "n": rows["n"].astype(int).tolist(), "cells": {}, "rank": ranks,
             "friedman": {}}
    for m in metric_names:
        scores = analysis.score_matrix(results, dataset, m, list(rows.index))
        marks = analysis.wilcoxon_vs_reference(scores, reference, hib[m]) if reference else {}
        col = rows[f"{m}_mean"]
        best = (col.idxmax() if hib[m] else col.idxmin()) if col.notna().any() else None
        table["friedman"][m] = analysis.friedman(scores)
        table["cells"][m] = [(rows.at[c, f"{m}_mean"], rows.at[c, f"{m}_std"], c == best, marks.get(c, ""))
                             for c in rows.index]
    table["seconds"] = rows["seconds_mean"].tolist()
    table["direction"] = {m: "↑" if hib[m] else "↓" for m in metric_names}
    return table


def _fmt(mean, std):
    return "—" if not np.isfinite(mean) else f"{mean:.4g} ± {std:.2g}" if np.isfinite(std) else f"{mean:.4g}"


def objective_html(table, metric_names) -> str:
    head = "".join(f"<th>{html.escape(m)} {table['direction'][m]}</th>" for m in metric_names)
    body = []
    for i, config in enumerate(table["config"]):
        cells = []
        for m in metric_names:
            mean, std, best, mark = table["cells"][m][i]
            text = _fmt(mean, std) + (f" <sup>{html.escape(mark)}</sup>" if mark and mark != "ref" else "")
            cells.append(f"<td><b>{text}</b></td>" if best else f"<td>{text}</td>")
        ref = " (ref)" if any(table["cells"][m][i][3] == "ref" for m in metric_names) else ""
        body.append(f"<tr><td>{html.escape(config)}{ref}</td><td>{table['n'][i]}</td>{''.join(cells)}"
                    f"<td>{table['rank'].get(config, np.nan):.2f}</td><td>{_ms(table['seconds'][i])}</td></tr>")
    friedman = "".join(f"<td>{_p(table['friedman'][m])}</td>" for m in metric_names)
    body.append(f"<tr class='test'><td>Friedman p</td><td></td>{friedman}<td></td><td></td></tr>")
    return (f"<table><tr><th>method</th><th>n</th>{head}<th>avg rank</th><th>ms / pair</th></tr>"
            + "".join(body) + "</table>")


def case_html(cases, dataset: str, labels, metric_names) -> str:
    """Scores per case (slices of volumes): mean ± std over cases of each case's mean over its slices."""
    rows = cases[cases["dataset"] == dataset]
    body = []
    for label in labels:
        sel = rows[rows["config"] == label]
        if sel.empty:
            continue
        cells = "".join(f"<td>{_fmt(sel[m].mean(), sel[m].std(ddof=1))}</td>" for m in metric_names)
        body.append(f"<tr><td>{html.escape(label)}</td><td>{len(sel)}</td>{cells}</tr>")
    head = "".join(f"<th>{html.escape(m)}</th>" for m in metric_names)
    return (f"<h3 id='{dataset}-cases'>Scores per case</h3><table><tr><th>method</th><th>cases</th>{head}</tr>"
            + "".join(body) + "</table><p class='note'>Each case's score is the mean over its selected slices "
            "(<a href='cases.csv'>cases.csv</a>); metrics are 2-D, computed per slice (no 3-D form is used). "
            "The figure grid shows each case's middle selected slice. The significance marks above treat slices "
            "as independent pairs; slices of one case are not, so read them with the per-case spread.</p>")


def _ms(seconds):
    return "—" if not np.isfinite(seconds) else f"{1000 * seconds:.1f}"   # — : a precomputed method, not timed


def _p(p):
    return "—" if not np.isfinite(p) else f"{p:.2g}"


def objective_markdown(table, metric_names) -> str:
    lines = ["| method | " + " | ".join(f"{m} {table['direction'][m]}" for m in metric_names) + " | avg rank |",
             "|---" * (len(metric_names) + 2) + "|"]
    for i, config in enumerate(table["config"]):
        cells = []
        for m in metric_names:
            mean, std, best, mark = table["cells"][m][i]
            text = _fmt(mean, std) + (f" {mark}" if mark and mark != "ref" else "")
            cells.append(f"**{text}**" if best else text)
        lines.append(f"| {config} | " + " | ".join(cells) + f" | {table['rank'].get(config, np.nan):.2f} |")
    return "\n".join(lines) + "\n"


def objective_latex(table, metric_names) -> str:
    def esc(text):
        return str(text).replace("_", r"\_").replace("±", r"$\pm$").replace("−", "$-$").replace("%", r"\%")
    lines = [r"\begin{tabular}{l" + "c" * (len(metric_names) + 1) + "}", r"\hline",
             "Method & " + " & ".join(esc(m) + (r" $\uparrow$" if table["direction"][m] == "↑" else r" $\downarrow$")
                                      for m in metric_names) + r" & Avg. rank \\", r"\hline"]
    for i, config in enumerate(table["config"]):
        cells = []
        for m in metric_names:
            mean, std, best, mark = table["cells"][m][i]
            text = esc(_fmt(mean, std)) + (f"$^{{{esc(mark)}}}$" if mark and mark != "ref" else "")
            cells.append(rf"\textbf{{{text}}}" if best else text)
        lines.append(esc(config) + " & " + " & ".join(cells) + f" & {table['rank'].get(config, np.nan):.2f}" + r" \\")
    lines += [r"\hline", r"\end{tabular}"]
    return "\n".join(lines) + "\n"


# --- limitation --------------------------------------------------------------------------------------------

def limitation_gallery(out: Path, results, dataset, labels, metric_names, k=3):
    """Each configuration's worst pair per headline metric: the fused image titled with the value."""
    import metrics

    from bench.runner import load_fused

    headline = [m for m in HEADLINE if m in metric_names][:4] or metric_names[:4]
    fig, axes = plt.subplots(len(labels), len(headline), figsize=(1.9 * len(headline), 2.0 * len(labels) + 0.2),
                             squeeze=False)
    rows = []
    for r, label in enumerate(labels):
        for c, m in enumerate(headline):
            hib = metrics.get_metric(m).higher_is_better
            worst = analysis.worst_pairs(results, dataset.name, label, m, hib, k)
            ax = axes[r, c]
            ax.axis("off")
            if worst.empty:
                continue
            top = worst.iloc[0]
            _show(ax, load_fused(out, dataset.name, label, top["pair"]), f"{m} worst: {top['pair']} ({top[m]:.3g})",
                  label if c == 0 else None)
            ax.axis("on")
            rows.append((label, m, ", ".join(f"{p} ({v:.3g})" for p, v in zip(worst["pair"], worst[m]))))
    fig.tight_layout(pad=0.3)
    path = _save(fig, out / "figures" / f"limitations_{dataset.name}.png")
    table = "".join(f"<tr><td>{html.escape(a)}</td><td>{html.escape(b)}</td><td>{html.escape(c)}</td></tr>"
                    for a, b, c in rows)
    return path, f"<table><tr><th>method</th><th>metric</th><th>{k} worst pairs (value)</th></tr>{table}</table>"


def swept_runs(configs) -> list[dict]:
    """The training-run folders of the epoch sweeps (a sweep's ``weights`` file lies in
    ``<run>/checkpoints/`` or ``<run>/generators/``), e.g. a campaign run's kept generators."""
    from common.errors import UserError
    from methods.densegan import resolve_weights

    runs = {}
    for config in configs:
        weights = config.kwargs.get("weights")
        if config.epoch is None or not weights:
            continue
        try:
            path = resolve_weights(config.method, weights)
        except UserError:       # a missing file is reported by the cells, not here
            continue
        if path.parent.name in ("checkpoints", "generators"):
            folder = path.parent.parent
            entry = runs.setdefault(str(folder), {"method": config.method, "out": str(folder), "epochs": 0})
            entry["epochs"] = max(entry["epochs"], config.epoch)
    return list(runs.values())


def loss_curves_html(out: Path, training: list[dict]) -> str:
    """The loss curves (and validation curves, where the run validated) of the suite's training runs and of
    the runs its epoch sweeps read, copied beside the report so that it stays self-contained."""
    parts, seen = [], set()
    for run in training:
        folder = Path(run["out"])
        if folder.resolve() in seen:
            continue
        seen.add(folder.resolve())
        name = "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in folder.name)
        for kind, file, what in (("loss", "loss_curve.png", "Training losses"),
                                 ("val", "val_curve.png", "Validation scores after each epoch")):
            curve = folder / file       # (a training entry's "loss_curve" is this same file)
            if not curve.is_file():
                continue
            copy = write_bytes(out / "figures" / f"{kind}_{name}.png", curve.read_bytes(), overwrite=True)
            parts.append(f"<figure><img src='{copy.relative_to(out).as_posix()}' alt='{kind} curves {html.escape(name)}'>"
                         f"<figcaption>{what} of <code>{html.escape(run['method'])}</code> "
                         f"({run['epochs']} epochs, run folder <code>{html.escape(run['out'])}</code>).</figcaption></figure>")
    return "".join(parts)


# --- parametric and epoch ----------------------------------------------------------------------------------

def sweep_figure(out: Path, summary, configs, metric_names, kind: str):
    """Metric vs swept parameter (``kind='parametric'``) or vs epoch (``kind='epoch'``); one panel per metric."""
    series = {}
    for config in configs:
        if kind == "epoch" and config.epoch is not None:
            base = config.label.rsplit("@", 1)[0]
            series.setdefault((base, "epoch"), []).append((config.epoch, config.label))
        elif kind == "parametric":
            for name in config.swept:
                base = config.method + "".join(f"[{k}={v}]" for k, v in config.params
                                               if k in config.swept and k != name)
                series.setdefault((base, name), []).append((config.kwargs[name], config.label))
    if not series:
        return None
    fig, axes = plt.subplots(1, len(metric_names), figsize=(2.6 * len(metric_names), 2.4), squeeze=False)
    for ax, m in zip(axes[0], metric_names):
        for (base, param), points in series.items():
            for dataset, rows in summary.groupby("dataset"):
                means = rows.set_index("config")[f"{m}_mean"]
                xs = [x for x, label in points if label in means.index]
                ys = [means[label] for x, label in points if label in means.index]
                numeric = all(isinstance(x, (int, float)) for x in xs)
                ax.plot(xs if numeric else [str(x) for x in xs], ys, marker="o", ms=3,
                        label=f"{base} {dataset}" if len(series) > 1 or summary['dataset'].nunique() > 1 else base)
        ax.set_title(m, fontsize=8)
        ax.set_xlabel(next(iter(series))[1], fontsize=7)
        ax.tick_params(labelsize=6)
    axes[0, 0].legend(fontsize=5)
    fig.tight_layout(pad=0.3)
    return _save(fig, out / "figures" / f"{kind}.png")


# --- algorithm ---------------------------------------------------------------------------------------------

def algorithm_table(configs, pairs, repeats: int = 3, *, cache: Path | None = None, versions: dict | None = None,
                    budget_s: float = 2.0) -> list[dict]:
    """Parameters, MACs, median time and peak memory per configuration, measured one at a time.

    Time: median of up to ``repeats`` fusions of the first pair in this process; repeats stop once they
    have taken ``budget_s`` (a 25 s method is timed once, not three times). Peak memory: the rise of the
    process's peak resident set (Linux ``VmHWM``, reset through ``/proc/self/clear_refs``) during the first
    fusion, which counts numpy and torch alike; elsewhere Python's ``tracemalloc`` peak (numpy only).
    ``cache`` (a JSON file) keeps each row with its configuration's code version (``versions``), so a
    resumed run re-measures only what changed.
    """
    import time

    import methods

    if not pairs:
        return []
    a, b = pairs[0][1].load()
    cached = json.loads(cache.read_text()) if cache is not None and cache.exists() else {}
    seen, rows = set(), []
    for config in configs:
        key = (config.method, config.params_json)
        if key in seen or config.epoch is not None and any(c.method == config.method and c.epoch is not None
                                                           and (c.method, c.params_json) in seen for c in configs):
            continue
        seen.add(key)
        version = (versions or {}).get(config.label)
        hit = cached.get(config.label)
        if version is not None and hit is not None and hit.get("version") == version:
            rows.append(hit["row"])
            continue
        if config.method not in methods.METHODS:
            continue            # a precomputed method (bench/precomputed.py): nothing runs here to measure
        method = methods.get_method(config.method)
        times = []

        def timed_fusion():
            start = time.perf_counter()
            methods.fuse(a, b, config.method, **config.kwargs)
            times.append(time.perf_counter() - start)

        peak = _peak_memory(timed_fusion)
        while len(times) < repeats and sum(times) < budget_s:
            timed_fusion()
        info = method.complexity(**config.kwargs) if method.complexity else {}
        # "learned": trained here, or a network with parameters (the deep peers' published weights)
        learned = method.trainable or bool(info.get("parameters"))
        row = {"config": config.label, "trainable": learned, "parameters": info.get("parameters"),
               "gmacs": info["macs"] / 1e9 if info.get("macs") else None,
               "median_ms": 1000 * float(np.median(times)), "timed_runs": len(times), "peak_mib": peak,
               "size": f"{a.shape[1]}x{a.shape[0]}", "citation": method.citation}
        rows.append(row)
        if cache is not None:
            cached[config.label] = {"version": version, "row": row}
            write_json(cache, cached)
    return rows


def _peak_memory(fn) -> float:
    status = Path("/proc/self/status")
    try:
        # metrics/_allocator.py keeps freed heap mapped for speed; hand it back so it cannot hide the peak
        release_freed_memory()
        Path("/proc/self/clear_refs").write_text("5")
        before = _vm_kib(status, "VmRSS")
        fn()
        return (_vm_kib(status, "VmHWM") - before) / 1024
    except OSError:
        import tracemalloc
        tracemalloc.start()
        fn()
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        return peak / 2**20


def _vm_kib(status: Path, field: str) -> int:
    for line in status.read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise OSError(field)


def algorithm_html(rows) -> str:
    def num(x, fmt):
        return "—" if x is None or (isinstance(x, float) and not np.isfinite(x)) else format(x, fmt)
    body = "".join(
        f"<tr><td>{html.escape(r['config'])}</td><td>{'yes' if r['trainable'] else 'no'}</td>"
        f"<td>{num(r['parameters'], ',')}</td><td>{num(r['gmacs'], '.3f')}</td><td>{r['median_ms']:.1f}</td>"
        f"<td>{num(r['peak_mib'], '.1f')}</td><td>{html.escape(r['citation'])}</td></tr>" for r in rows)
    return ("<table><tr><th>method</th><th>learned</th><th>parameters</th><th>GMAC / pair</th>"
            "<th>median ms / pair</th><th>peak memory MiB</th><th>reference</th></tr>" + body + "</table>")


# --- the page ----------------------------------------------------------------------------------------------

def write_report(out: Path, datasets, pairs, configs, metric_names, suite: dict | None = None) -> Path:
    from bench.runner import RUN_FILE, results_table

    suite = suite or {}
    labels = [c.label for c in configs]
    results = results_table(out, configs, datasets)
    case_of = {(d.name, p.name): p.case for d, p in pairs if p.case}
    if case_of:  # slices of volumes (bench/volumes.py): a case column and scores per case
        results.insert(2, "case", [case_of.get(k, "") for k in zip(results["dataset"], results["pair"])])
    write_text(out / "results.csv", results.to_csv(index=False))
    try:
        results.to_parquet(out / "results.parquet")
    except ImportError:
        pass  # no parquet engine installed: the CSV is the table
    summary = analysis.summarise(results, metric_names)
    write_text(out / "summary.csv", summary.to_csv(index=False))
    if case_of:
        from bench.volumes import case_scores
        cases = case_scores(results[results["case"] != ""], metric_names)
        write_text(out / "cases.csv", cases.to_csv(index=False))
    run = json.loads((out / RUN_FILE).read_text())
    reference = suite.get("reference") or labels[0]
    # the figure grid and the gallery compare methods; parameter and epoch sweeps have their own figures
    compared = [c.label for c in configs if c.epoch is None and not c.swept] or labels

    toc, sections = [], []
    for ds in datasets:
        ds_pairs = [p for d, p in pairs if d.name == ds.name]
        table = objective_table(results, summary, ds.name, labels, metric_names, reference)
        md = write_text(out / "tables" / f"objective_{ds.name}.md", objective_markdown(table, metric_names))
        tex = write_text(out / "tables" / f"objective_{ds.name}.tex", objective_latex(table, metric_names))
        if any(p.case for p in ds_pairs):
            from bench.volumes import representative_slices
            grid_pairs, per_case = representative_slices(ds_pairs), case_html(cases, ds.name, labels, metric_names)
        else:
            grid_pairs, per_case = ds_pairs, ""
        grid = figure_grid(out, ds, grid_pairs, compared, suite.get("inset"),
                           reference if suite.get("difference_maps") and reference in compared else None)
        gallery, worst_html = limitation_gallery(out, results, ds, compared, metric_names)
        split_spec = run["datasets"].get(ds.name, {}).get("split")
        split = json.dumps(split_spec) if split_spec else "none (generated pairs)"
        colour = (" Metrics are computed on the luma Y (BT.601) of the colour source and of the fused image; "
                  "the figures show colour." if ds.colour else "")
        rel = lambda p: p.relative_to(out).as_posix()  # noqa: E731
        toc.append(f"<li><a href='#{ds.name}'>{html.escape(ds.name)}</a></li>")
        sections.append(
            f"<h2 id='{ds.name}'>{html.escape(ds.name)}</h2>"
            f"<p>{html.escape(ds.description)}. Source: <code>{html.escape(ds.location)}</code>; split "
            f"<code>{html.escape(split)}</code>; {len(ds_pairs)} pairs.{colour}</p>"
            f"<h3 id='{ds.name}-objective'>Objective analysis</h3>{objective_html(table, metric_names)}"
            f"<p class='note'>Marks: <sup>+</sup>/<sup>−</sup> significantly better/worse than "
            f"<code>{html.escape(reference)}</code> (Wilcoxon signed-rank over pairs, Holm-corrected, α = 0.05). "
            f"Friedman p tests whether all methods score alike. Also as <a href='{rel(md)}'>Markdown</a> and "
            f"<a href='{rel(tex)}'>LaTeX</a>.</p>{per_case}"
            f"<h3 id='{ds.name}-subjective'>Subjective analysis</h3><p><img src='{rel(grid)}' "
            f"alt='figure grid {html.escape(ds.name)}'></p>"
            f"<h3 id='{ds.name}-limitation'>Limitation analysis</h3><p><img src='{rel(gallery)}' "
            f"alt='worst cases {html.escape(ds.name)}'></p>{worst_html}")

    extra = []
    for kind, title in (("parametric", "Parametric analysis"), ("epoch", "Epoch analysis")):
        fig = sweep_figure(out, summary, configs, metric_names, kind)
        body = f"<p><img src='{fig.relative_to(out).as_posix()}' alt='{kind}'></p>" if fig is not None else ""
        if kind == "epoch":
            body += loss_curves_html(out, [*(run.get("training") or []), *swept_runs(configs)])
        if body:
            extra.append(f"<h2 id='{kind}'>{title}</h2>{body}")
            toc.append(f"<li><a href='#{kind}'>{title}</a></li>")
    from bench.equivariance import equivariance_section
    section = equivariance_section(out, pairs, [c for c in configs if c.label in compared], metric_names, results,
                                   suite, run)
    if section:
        extra.append(section)
        toc.append("<li><a href='#equivariance'>Equivariance analysis</a></li>")
    algo = algorithm_table(configs, pairs, int(suite.get("timing_repeats", 3)), cache=out / "algorithm.json",
                           versions=run.get("code_versions"))
    write_text(out / "tables" / "algorithm.csv", pd.DataFrame(algo).to_csv(index=False))
    extra.append(f"<h2 id='algorithm'>Algorithm analysis</h2>{algorithm_html(algo)}<p class='note'>Measured one "
                 f"configuration at a time on the first pair ({html.escape(run['machine'])}); the objective tables' "
                 f"ms / pair come from the benchmark run itself (with {run.get('jobs', 1)} worker(s)).</p>")
    toc.append("<li><a href='#algorithm'>Algorithm analysis</a></li>")

    command = html.escape(run.get("command") or "")
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Fusion benchmark: {html.escape(run['suite'])}</title>
<style>
body {{ font-family: sans-serif; max-width: 1250px; margin: 2em auto; padding: 0 1em; color: #222; }}
table {{ border-collapse: collapse; margin: 0.5em 0 1em; font-size: 0.85em; }}
th, td {{ border: 1px solid #bbb; padding: 0.2em 0.5em; text-align: right; }}
th:first-child, td:first-child {{ text-align: left; }}
tr.test td {{ color: #555; font-style: italic; }}
img {{ max-width: 100%; }}
code {{ background: #f3f3f3; padding: 0.1em 0.3em; }}
.note {{ font-size: 0.85em; color: #444; }}
</style></head><body>
<h1>Fusion benchmark — suite <code>{html.escape(run['suite'])}</code></h1>
<p>Command: <code>{command}</code><br>
Metric convention: <code>{html.escape(run['convention'])}</code>; values are mean ± standard deviation over pairs;
best per column in bold (↑ higher is better, ↓ lower is better). Started {html.escape(run['started'])} on
{html.escape(run['machine'])}, Python {html.escape(run['python'])}.</p>
<p>Tables: <a href="results.csv">results.csv</a> (one row per dataset, pair and configuration),
<a href="summary.csv">summary.csv</a>, <a href="tables/algorithm.csv">tables/algorithm.csv</a>.</p>
{_skipped_html(run.get("skipped") or {})}{_precomputed_html(run.get("precomputed") or {})}
<h2>Contents</h2><ul>{''.join(toc)}</ul>
{''.join(sections)}
{''.join(extra)}
</body></html>
"""
    return write_text(out / "index.html", page)


def _precomputed_html(precomputed: dict) -> str:
    """The published-output methods of this run: where their images were read and whom to cite."""
    if not precomputed:
        return ""
    items = "".join(f"<li><code>{html.escape(name)}</code>: {html.escape(spec.get('description', ''))}. "
                    f"{html.escape(spec.get('citation', ''))}</li>" for name, spec in precomputed.items())
    return (f"<p>Published outputs as methods (their fused images are read from disk, not computed here: "
            f"no time, parameters or memory):</p><ul>{items}</ul>")


def _skipped_html(skipped: dict) -> str:
    """The suite's configurations left out of this run, each with its reason (a deep peer without weights)."""
    if not skipped:
        return ""
    items = "".join(f"<li><code>{html.escape(label)}</code>: {html.escape(reason)}</li>"
                    for label, reason in skipped.items())
    return f"<p>Skipped ({len(skipped)}): not run here, so not in the tables below.</p><ul>{items}</ul>"
