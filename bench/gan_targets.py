"""The dense-block GAN's targets (issue #15), scored once on the test parts with the campaign's weights.

    python -m bench.gan_targets --campaign campaigns/harvard [--jobs 2] [--limit N] [--csv scores.csv]
    python -m bench.gan_targets --from-csv scores.csv          # tabulate an earlier scoring again

The cells (dataset, pair, method or run) are computed by the suite runner's ``compute_cells`` into
``--out`` (default ``reports/gan_targets``): every cell is recorded as it finishes, so a killed scoring
resumes where it stopped, and a cell is reused while its data, code and weights file are unchanged (the
classical baselines are scored once; a run that trains on is scored again). ``cells.jsonl`` is the
record to keep; the fused images beside it are not.

Every campaign run contributes its ``best.safetensors`` (the epoch with the best validation score; the
test parts are never used to choose). The configurations' seeds give the seed-to-seed spread. Datasets:
the Harvard case-wise test parts (no case shared with training or validation) and the distributed test
splits (these share cases with the training slices, see the model card). Metrics: the eight headline
metrics, default convention. The three targets, each per dataset:

1. ``densegan`` (its best seed by validation) beats ``average``, ``max`` and ``dwt`` on Qabf and VIF;
2. the full model beats each ablation on at least 5 of the 8 metrics by more than the seed spread: the
   difference of the seed means exceeds the larger of the two seed standard deviations, in the metric's
   direction;
3. ``densegan-plus`` beats ``densegan`` on at least 6 of the 8 and every classical baseline on Qabf and VIF.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

from bench.analysis import better
from bench.campaign import best_seed, finished_best_weights
from bench.datasets import REPO
from bench.sweeps import Config
from common.errors import UserError, report_user_error
from common.io import write_text
from metrics.sets import HEADLINE

DATASETS = ("harvard_ct_mri_casewise", "harvard_pet_mri_casewise", "harvard_spect_mri_casewise",
            "harvard_ct_mri", "harvard_pet_mri", "harvard_spect_mri")
SIMPLE = ("average", "max", "dwt")
CLASSICAL = ("average", "max", "dwt", "lp_sr", "llf_ioi", "nsst_papcnn", "nsct_pcnn", "csmca")
ABLATIONS = ("densegan-nodense", "densegan-noloss", "densegan-noloss-nodense")


def campaign_weights(campaign: Path) -> dict[str, dict[int, Path]]:
    """{configuration: {seed: best.safetensors}} of the campaign's finished runs."""
    found = finished_best_weights(campaign)
    if not found:
        raise UserError(f"{campaign}: no finished run with a best.safetensors (train the campaign first)")
    return found


DEFAULT_OUT = REPO / "reports" / "gan_targets"


def unfinished_runs(campaign: Path) -> list[str]:
    """Run folders of registered configurations whose training has not ended (no final generator)."""
    import methods

    return sorted(d.name for d in Path(campaign).glob("*-s*") if d.is_dir()
                  and d.name.rpartition("-s")[2].isdigit() and d.name.rpartition("-s")[0] in methods.METHODS
                  and not (d / "generator.safetensors").is_file())


def configurations(campaign: Path) -> tuple[list[Config], dict[str, str]]:
    """The classical baselines and one configuration per finished campaign run (labelled by the run,
    ``densegan-nodense-s1``), and {configuration: its validation-best run} (the shipped seed)."""
    weights = campaign_weights(campaign)
    runs = [Config(method, (("weights", str(path)),), name=f"{method}-s{seed}")
            for method, seeds in sorted(weights.items()) for seed, path in sorted(seeds.items())]
    chosen = {method: f"{method}-s{best_seed(seeds)}" for method, seeds in weights.items()}
    return [*(Config(name) for name in CLASSICAL), *runs], chosen


def score(campaign: Path, datasets, limit: int | None, out: Path = DEFAULT_OUT, jobs: int = 1) -> pd.DataFrame:
    """Per-pair headline metrics of every finished campaign run and the classical baselines on ``datasets``
    (cells cached in ``out``), plus each configuration's shipped seed again under the configuration's name."""
    from bench.datasets import Registry
    from bench.runner import CELLS_FILE, compute_cells, config_version, results_table

    out = Path(out)
    if out.exists() and any(out.iterdir()) and not (out / CELLS_FILE).is_file():
        raise UserError(f"{out}: exists and holds no {CELLS_FILE}; choose another --out")
    out.mkdir(parents=True, exist_ok=True)
    registry = Registry()
    configs, chosen = configurations(campaign)
    sets = [registry.dataset(name, announce=False) for name in datasets]
    pairs = [(ds, pair) for ds in sets for pair in ds.pairs(limit)]
    versions = {c.label: config_version(c) for c in configs}
    compute_cells(out, registry, pairs, configs, versions, list(HEADLINE), jobs=jobs, resume=True,
                  desc="targets")
    cells = results_table(out, configs, sets)
    asked = {(ds.name, pair.name) for ds, pair in pairs}
    current = pd.Series([k in asked for k in zip(cells["dataset"], cells["pair"])], index=cells.index)
    cells = cells[current & (cells["code"] == cells["config"].map(versions))]
    frame = cells.rename(columns={"config": "run"}).drop(columns=["method"]).rename(columns={"run": "method"})
    frame = frame[["method", "dataset", "pair", "seconds", "metric_seconds", *HEADLINE]]
    shipped = frame[frame.method.isin(chosen.values())].copy()
    shipped["method"] = shipped["method"].map({v: k for k, v in chosen.items()})
    return pd.concat([frame, shipped], ignore_index=True)


def targets(frame: pd.DataFrame) -> list[dict]:
    """One row per (dataset, target, rival): what was compared, the count won, and pass/fail."""
    means = frame.groupby(["dataset", "method"])[list(HEADLINE)].mean()
    rows = []
    for dataset in means.index.get_level_values(0).unique():
        have = set(means.loc[dataset].index)

        def mean(method, metric):
            return means.loc[(dataset, method), metric]

        for rival in [r for r in SIMPLE if r in have and "densegan" in have]:
            won = [m for m in ("Qabf", "VIF") if better(m, mean("densegan", m), mean(rival, m))]
            rows.append({"dataset": dataset, "target": "1 densegan vs simple", "rival": rival, "won": len(won),
                         "needed": 2, "pass": len(won) == 2, "detail": " ".join(won) or "-"})
        seeds = frame[frame.dataset == dataset].assign(config=lambda f: f.method.str.replace(r"-s\d+$", "", regex=True))
        seeds = seeds[seeds.method.str.contains(r"-s\d+$")].groupby(["config", "method"])[list(HEADLINE)].mean()
        configs = set(seeds.index.get_level_values(0))
        for ablation in [a for a in ABLATIONS if a in configs and "densegan" in configs]:
            full, abl = seeds.loc["densegan"], seeds.loc[ablation]
            won = [m for m in HEADLINE
                   if better(m, full[m].mean(), abl[m].mean(),
                              max(full[m].std(ddof=0), abl[m].std(ddof=0)))]
            rows.append({"dataset": dataset, "target": "2 full vs ablation (beyond seed spread)", "rival": ablation,
                         "won": len(won), "needed": 5, "pass": len(won) >= 5, "detail": " ".join(won) or "-",
                         "seeds": f"{len(full)} vs {len(abl)}"})
        if "densegan-plus" in have:
            if "densegan" in have:
                won = [m for m in HEADLINE if better(m, mean("densegan-plus", m), mean("densegan", m))]
                rows.append({"dataset": dataset, "target": "3 plus vs densegan", "rival": "densegan",
                             "won": len(won), "needed": 6, "pass": len(won) >= 6, "detail": " ".join(won) or "-"})
            for rival in [r for r in CLASSICAL if r in have]:
                won = [m for m in ("Qabf", "VIF") if better(m, mean("densegan-plus", m), mean(rival, m))]
                rows.append({"dataset": dataset, "target": "3 plus vs classical", "rival": rival, "won": len(won),
                             "needed": 2, "pass": len(won) == 2, "detail": " ".join(won) or "-"})
    return rows


def means_table(frame: pd.DataFrame) -> pd.DataFrame:
    """Per dataset, the mean of each headline metric of every configuration as shipped (its validation-best
    seed) and every classical baseline: the model card's test table."""
    shown = frame[~frame.method.str.contains(r"-s\d+$")]
    order = {m: i for i, m in enumerate([*sorted(shown.method.unique(), key=lambda m: (m in CLASSICAL, m))])}
    table = shown.groupby(["dataset", "method"])[list(HEADLINE)].mean().reset_index()
    return table.sort_values(["dataset", "method"], key=lambda c: c.map(order) if c.name == "method" else c)


def seed_table(frame: pd.DataFrame) -> pd.DataFrame:
    """Per dataset and configuration, each headline metric's mean over the seeds' means and their standard
    deviation (population, as target 2 uses it), as "mean ± sd" (the mean alone for one seed: no spread
    was measured); the number of seeds."""
    runs = frame[frame.method.str.contains(r"-s\d+$")]
    per_seed = runs.groupby(["dataset", "method"])[list(HEADLINE)].mean().reset_index()
    per_seed["configuration"] = per_seed.method.str.replace(r"-s\d+$", "", regex=True)
    rows = []
    for (dataset, config), group in per_seed.groupby(["dataset", "configuration"]):
        row = {"dataset": dataset, "configuration": config, "seeds": len(group)}
        for m in HEADLINE:
            row[m] = (f"{group[m].mean():.4f} ± {group[m].std(ddof=0):.4f}" if len(group) > 1
                      else f"{group[m].mean():.4f}")
        rows.append(row)
    return pd.DataFrame(rows)


def report_markdown(frame: pd.DataFrame, rows: list[dict], command: str, waiting: list[str]) -> str:
    """The target table, the shipped configurations' means and the seed spread, as one Markdown page."""
    from bench.gan_evaluate import markdown_table

    fields = ["dataset", "target", "rival", "won", "needed", "pass", "detail"]
    status = (f"**Provisional**: {len(waiting)} runs had not finished and are not in it ({', '.join(waiting)})."
              if waiting else "Every run of the campaign had finished.")
    return "\n\n".join([
        "# The dense-block GAN's targets on the test sets (issue #15)",
        f"Written by `{command}`. {status} Metrics: default convention, PET and SPECT on luma; means over "
        f"the pairs of each set ({', '.join(f'{d} {n}' for d, n in frame.groupby('dataset').pair.nunique().items())} pairs).",
        "## Targets", markdown_table(pd.DataFrame(rows)[fields]) if rows else "(no comparison possible yet)",
        f"{sum(r['pass'] for r in rows)} of {len(rows)} comparisons meet their target.",
        "## Means: each configuration as shipped (its validation-best seed) and the classical baselines",
        markdown_table(means_table(frame)),
        "## Seed spread: mean ± sd over each configuration's seeds (of the seeds' means)",
        markdown_table(seed_table(frame)), ""])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.gan_targets", description=__doc__.splitlines()[0])
    parser.add_argument("--campaign", type=Path, help="campaign output folder (run folders <method>-s<seed>)")
    parser.add_argument("--datasets", default=",".join(DATASETS))
    parser.add_argument("--limit", type=int, help="only the first N pairs per dataset (a quick look, not the table)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT,
                        help="folder of the cached cells (default reports/gan_targets; a rerun reuses them)")
    parser.add_argument("--jobs", type=int, default=1, help="pairs scored in parallel processes")
    parser.add_argument("--csv", type=Path, help="write the per-pair scores here")
    parser.add_argument("--from-csv", type=Path, help="tabulate scores written earlier with --csv")
    args = parser.parse_args(argv)
    waiting = []
    try:
        if args.from_csv:
            frame = pd.read_csv(args.from_csv)
        elif args.campaign:
            waiting = unfinished_runs(args.campaign)
            if waiting:
                print(f"note: {len(waiting)} campaign runs have not finished and are left out, so the table is "
                      f"provisional: {', '.join(waiting)}", file=sys.stderr)
            frame = score(args.campaign, args.datasets.split(","), args.limit, args.out, args.jobs)
        else:
            raise UserError("give --campaign DIR (score) or --from-csv FILE (tabulate)")
        if args.csv:
            frame.to_csv(args.csv, index=False)
    except UserError as exc:
        return report_user_error(exc)
    rows = targets(frame)
    if args.campaign and not args.from_csv:
        command = "python -m bench.gan_targets " + " ".join(argv if argv is not None else sys.argv[1:])
        report = write_text(args.out / "targets.md", report_markdown(frame, rows, command, waiting))
        print(f"wrote {report}", file=sys.stderr)
    fields = ["dataset", "target", "rival", "won", "needed", "pass", "detail"]
    print("| " + " | ".join(fields) + " |\n|" + "---|" * len(fields))
    for r in rows:
        print("| " + " | ".join(str(r.get(k, "")) for k in fields) + " |")
    print(f"\n{sum(r['pass'] for r in rows)} of {len(rows)} comparisons meet their target")
    return 0


if __name__ == "__main__":
    sys.exit(main())
