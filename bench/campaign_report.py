"""A campaign's page: every run's validation curve against the simple baselines on the same pairs.

    python -m bench campaign methods/configs/campaign-harvard.yaml --report     # writes <out>/index.html

The campaign's epoch analysis, on validation only: ``val_curves.png`` draws val_score, Qabf and VIF against
the epoch for every run (one line each, configurations by colour, seeds by line style) with the ``average``,
``max`` and ``dwt`` baselines as horizontal lines, scored on exactly the pairs the runs validate on
(``methods.densegan.train.validation_pairs`` of the first run's resolved config) and scored as the runs
are (``validation_means``); the baselines' scores are cached in ``<out>/val_baselines.csv``.
``index.html`` holds the figure and the campaign table (status, epochs, best validation epoch and its
scores).
"""
from __future__ import annotations

import html
from pathlib import Path

from common.errors import UserError
from common.io import read_csv_rows, write_csv_rows, write_text

BASELINES = ("average", "max", "dwt")
CURVES = ("val_score", "Qabf", "VIF")


def baseline_scores(out: Path, data_cfg: dict, datasets) -> list[dict]:
    """Mean validation metrics and val_score of each baseline on the campaign's validation pairs (cached)."""
    import methods
    from methods.densegan.train import VALIDATION_METRICS, validation_means, validation_pairs

    cache = out / "val_baselines.csv"
    pairs = validation_pairs(data_cfg, datasets)
    if not pairs:
        raise UserError(f"{out}: the campaign's runs validate on nothing (no data.val_datasets in their config); "
                        f"a report draws validation curves")
    key = ";".join(name for name, _, _ in pairs)
    cached = read_csv_rows(cache)
    if cached and all(r.get("pairs") == key for r in cached):
        return cached
    rows = []
    for method in BASELINES:
        means = validation_means(lambda a, b: methods.fuse(a, b, method), pairs)   # the runs' own val_score
        rows.append({"method": method, **{m: round(v, 6) for m, v in means.items()}, "pairs": key})
    write_csv_rows(cache, rows, ["method", *VALIDATION_METRICS, "val_score", "pairs"])
    return rows


def plot_curves(out: Path, run_names: list[str], baselines: list[dict]) -> Path:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    configs = list(dict.fromkeys(name.rpartition("-s")[0] for name in run_names))
    colours = {c: plt.cm.tab10(i % 10) for i, c in enumerate(configs)}
    styles = ["-", "--", ":", "-."]
    fig, axes = plt.subplots(1, len(CURVES), figsize=(5 * len(CURVES), 4), squeeze=False)
    for ax, key in zip(axes[0], CURVES):
        for name in run_names:
            rows = read_csv_rows(out / name / "log_val.csv")
            if not rows:
                continue
            config, _, seed = name.rpartition("-s")
            ax.plot([int(r["epoch"]) for r in rows], [float(r[key]) for r in rows], marker=".",
                    color=colours[config], linestyle=styles[int(seed) % len(styles)] if seed.isdigit() else "-",
                    label=name)
        for i, row in enumerate(baselines):
            ax.axhline(float(row[key]), color="black", linewidth=0.8, linestyle=styles[(i + 1) % len(styles)],
                       label=f"{row['method']} (baseline)")
        ax.set_title(key)
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
    axes[0][-1].legend(fontsize=7, loc="center left", bbox_to_anchor=(1.02, 0.5))
    fig.tight_layout()
    path = out / "val_curves.png"
    tmp = path.with_name(path.name + ".tmp.png")
    fig.savefig(tmp, dpi=90)
    plt.close(fig)
    tmp.replace(path)
    return path


def write_campaign_report(out: Path, table: list[dict], fields, data_cfg: dict, datasets) -> Path:
    """``<out>/index.html`` (and ``val_curves.png``) for a campaign table from ``bench.campaign``."""
    out = Path(out)
    baselines = baseline_scores(out, data_cfg, datasets)
    plot_curves(out, [r["run"] for r in table], baselines)
    head = "".join(f"<th>{html.escape(f)}</th>" for f in fields)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(r.get(f, '')))}</td>" for f in fields) + "</tr>"
                   for r in table)
    base = "".join(f"<tr><td>{html.escape(r['method'])}</td>"
                   + "".join(f"<td>{float(r[k]):.4f}</td>" for k in ("val_score", "Qabf", "VIF", "SSIM", "MI"))
                   + "</tr>" for r in baselines)
    page = f"""<!doctype html><html><head><meta charset="utf-8"><title>campaign {html.escape(out.name)}</title>
<style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;
padding:3px 6px;font-size:13px}}</style></head><body>
<h1>Training campaign <code>{html.escape(out.name)}</code></h1>
<p>Validation only (the <code>harvard_*_val</code> parts; no test split is used to choose). Each run's best
epoch is the one with the highest val_score = (Qabf + VIF) / 2; its generator is the run's
<code>best.safetensors</code>.</p>
<h2>Validation curves</h2><img src="val_curves.png" alt="val_score, Qabf and VIF against the epoch for every run">
<h2>Baselines on the same validation pairs</h2>
<table><tr><th>method</th><th>val_score</th><th>Qabf</th><th>VIF</th><th>SSIM</th><th>MI</th></tr>{base}</table>
<h2>Runs</h2><table><tr>{head}</tr>{body}</table>
</body></html>
"""
    return write_text(out / "index.html", page, overwrite=True)
