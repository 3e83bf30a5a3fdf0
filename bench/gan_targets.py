"""The dense-block GAN's targets (issue #15), scored once on the test parts with the campaign's weights.

    python -m bench.gan_targets --campaign campaigns/harvard [--limit N] [--csv scores.csv]
    python -m bench.gan_targets --from-csv scores.csv          # tabulate an earlier scoring again

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
from common.errors import UserError, report_user_error
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


def score(campaign: Path, datasets, limit: int | None) -> pd.DataFrame:
    """Per-pair headline metrics of every campaign run and the classical baselines on ``datasets``."""
    from bench.gan_evaluate import evaluate_methods

    weights = campaign_weights(campaign)
    specs = {f"{m}-s{s}": f"{m}[weights={p}]" for m, runs in weights.items() for s, p in runs.items()}
    frame = evaluate_methods([*specs.values(), *CLASSICAL], datasets, list(HEADLINE), limit)
    frame["method"] = frame["method"].map({v: k for k, v in specs.items()}).fillna(frame["method"])
    chosen = {m: f"{m}-s{best_seed(runs)}" for m, runs in weights.items()}
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


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.gan_targets", description=__doc__.splitlines()[0])
    parser.add_argument("--campaign", type=Path, help="campaign output folder (run folders <method>-s<seed>)")
    parser.add_argument("--datasets", default=",".join(DATASETS))
    parser.add_argument("--limit", type=int, help="only the first N pairs per dataset (a quick look, not the table)")
    parser.add_argument("--csv", type=Path, help="write the per-pair scores here")
    parser.add_argument("--from-csv", type=Path, help="tabulate scores written earlier with --csv")
    args = parser.parse_args(argv)
    try:
        if args.from_csv:
            frame = pd.read_csv(args.from_csv)
        elif args.campaign:
            frame = score(args.campaign, args.datasets.split(","), args.limit)
        else:
            raise UserError("give --campaign DIR (score) or --from-csv FILE (tabulate)")
        if args.csv:
            frame.to_csv(args.csv, index=False)
    except UserError as exc:
        return report_user_error(exc)
    rows = targets(frame)
    fields = ["dataset", "target", "rival", "won", "needed", "pass", "detail"]
    print("| " + " | ".join(fields) + " |\n|" + "---|" * len(fields))
    for r in rows:
        print("| " + " | ".join(str(r.get(k, "")) for k in fields) + " |")
    print(f"\n{sum(r['pass'] for r in rows)} of {len(rows)} comparisons meet their target")
    return 0


if __name__ == "__main__":
    sys.exit(main())
