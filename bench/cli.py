"""``python -m bench``: run suites, fuse one pair, compute metrics, list what exists.

User mistakes (``UserError``) print one ``error: ...`` line and exit with status 2; ``--debug`` shows
the traceback instead.
"""
from __future__ import annotations

import argparse
import json
import os
import sys

from common.errors import UserError, first_few, metric_warnings_as_lines, report_user_error


def _csv_list(text: str | None) -> list[str] | None:
    return [t.strip() for t in text.split(",") if t.strip()] if text else None


def cmd_run(args) -> int:
    from bench.runner import run_suite

    out = run_suite(args.suite, out=args.out, methods=_csv_list(args.methods), metric_names=_csv_list(args.metrics),
                    data_root=args.data_root, resume=args.resume, fresh=args.fresh, convention=args.convention,
                    jobs=args.jobs, argv=args.argv)
    print(f"wrote {out / 'index.html'}")
    return 0


def cmd_regress(args) -> int:
    from bench.regression import check_suite

    return check_suite(args.suite, update=args.update, data_root=args.data_root, rtol=args.rtol, jobs=args.jobs)


def cmd_fuse(args) -> int:
    from pathlib import Path

    import methods
    from common.io import check_writable, read_image, write_image

    out = Path(args.output)
    params = {}
    for item in args.param or []:
        key, sep, value = item.partition("=")
        if not sep:
            raise UserError(f"--param {item!r}: expected NAME=VALUE")
        params[key.strip()] = value   # text; the registry converts it to the parameter's type
    params = methods.get_method(args.method).check_params(params)   # before reading anything
    from bench.volumes import fuse_volume_files, is_volume_path
    if is_volume_path(args.a) or is_volume_path(args.b):  # NIfTI or DICOM: slice-wise, written as a volume
        # (a DICOM series is written as a folder: fuse_volume_files checks the output itself)
        fuse_volume_files(args.a, args.b, out, args.method, params=params, axis=args.axis, resample=args.resample,
                          norm_a=args.norm_a, norm_b=args.norm_b, force=args.force)
        print(f"wrote {out}")
        return 0
    check_writable(out, overwrite=args.force)
    fused = methods.fuse(read_image(args.a), read_image(args.b), args.method, **params)
    write_image(out, fused, overwrite=args.force)
    print(f"wrote {out}")
    return 0


def cmd_metrics(args) -> int:
    import metrics
    from common.io import check_writable, read_image

    names = _csv_list(args.metrics)
    folder_mode = bool(args.a_dir or args.b_dir or args.f_dir)
    if folder_mode and (args.A or args.B or args.F):
        raise UserError("give three images A B F or --a DIR --b DIR --f DIR, not both")
    if args.output:              # refused before any scoring, not after
        check_writable(args.output, overwrite=args.force)
    if folder_mode:
        if not (args.a_dir and args.b_dir and args.f_dir):
            raise UserError("folder mode needs all of --a DIR --b DIR --f DIR")
        from bench.metrics_folder import evaluate_folders

        failures: list[str] = []
        table = evaluate_folders(args.a_dir, args.b_dir, args.f_dir, names, args.convention, args.jobs, failures)
        text = (_strict_json(table.to_dict(orient="index")) if args.json else table.to_csv())
        _emit(text, args.output, args.force, f"{len(table)} images")
        if failures:  # what was scored is written above; the run still fails, naming what was not
            raise UserError(f"{len(failures)} of {len(table) + len(failures)} image(s) not scored: "
                            + first_few(failures, 3, "; "))
        return 0
    if not (args.A and args.B and args.F):
        raise UserError("give three images A B F, or --a DIR --b DIR --f DIR")
    scores = metrics.compute(read_image(args.A), read_image(args.B), read_image(args.F), names,
                             convention=args.convention)
    if args.json:
        text = _strict_json(scores)
    elif args.output:            # a one-row table like folder mode's, named by the fused file's stem
        import pandas as pd
        from pathlib import Path
        text = pd.DataFrame([scores], index=pd.Index([Path(args.F).stem], name="name")).to_csv()
    else:
        width = max(map(len, scores))
        text = "".join(f"{name:<{width}}  {value:.6g}\n" for name, value in scores.items())
    _emit(text, args.output, args.force, "1 image")
    return 0


def _strict_json(obj) -> str:
    """JSON that strict parsers accept: NaN and infinities (a metric undefined on its input) become null."""
    import math

    def clean(value):
        if isinstance(value, dict):
            return {str(k): clean(v) for k, v in value.items()}
        if isinstance(value, float) and not math.isfinite(value):
            return None
        return value
    return json.dumps(clean(obj), indent=2, allow_nan=False) + "\n"


def _emit(text: str, output: str | None, force: bool, what: str) -> None:
    """Print ``text``, or write it atomically to ``output`` and say so."""
    if output:
        from common.io import write_text
        write_text(output, text, overwrite=force)
        print(f"wrote {output} ({what})")
    else:
        print(text, end="")


def cmd_train(args) -> int:
    from bench.training import run_train

    run_train(args)
    return 0


def cmd_campaign(args) -> int:
    from bench.campaign import read_campaign, run_campaign, ship_weights

    if args.ship:
        from methods.densegan import WEIGHTS_DIR

        out, _ = read_campaign(args.file, args.out)
        for row in ship_weights(out, WEIGHTS_DIR, replace=args.replace):
            print(f"{row['method']}: {row['run']} epoch {row['epoch']} (val_score {row['val_score']}) -> {row['path']}"
                  + (" (unchanged)" if row["unchanged"] else ""))
        return 0
    rows = run_campaign(args.file, jobs=args.jobs, only=_csv_list(args.only), status_only=args.status,
                        nice=args.nice, out=args.out, report=args.report)
    finished = sum(r["status"] == "finished" for r in rows)
    print(f"campaign {args.file}: {finished}/{len(rows)} runs finished (table: campaign.md in its out folder)")
    return 0


def cmd_list(args) -> int:
    from bench.datasets import Registry

    what = args.what
    registry = Registry()
    if what in (None, "suites"):
        print("suites:")
        for name, spec in registry.suites.items():
            print(f"  {name:<22} {spec.get('description', '')}")
    if what in (None, "datasets"):
        print("datasets:")
        for name, spec in registry.dataset_specs.items():
            print(f"  {name:<26} {spec.get('description', '')}")
    if what in (None, "methods"):
        import methods
        print("methods:")
        for m in methods.METHODS.values():
            params = ", ".join(f"{k}={v!r}" for k, v in m.params.items())
            kind = " [trainable]" if m.trainable else ""
            print(f"  {m.name:<24} {m.summary}{kind}" + (f" ({params})" if params else ""))
    if what in (None, "metrics"):
        import metrics
        print("metrics (direction; conventions):")
        for m in metrics.METRICS.values():
            print(f"  {m.name:<10} {m.direction:<6} {','.join(m.conventions):<22} {m.summary}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--debug", action="store_true", help="show tracebacks for user errors")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run a suite from datasets.yaml and write its report")
    run.add_argument("--suite", required=True)
    run.add_argument("--out", help="run folder (default reports/<suite>)")
    run.add_argument("--methods", help="comma-separated methods (default: the suite's)")
    run.add_argument("--metrics", help="comma-separated metrics (default: the suite's)")
    run.add_argument("--data-root", help="folder holding harvard/ etc. (default $FUSION_DATA_ROOT, then ../shared/data)")
    run.add_argument("--convention", default="default", help="metric convention: default, cddfuse, vifb")
    run.add_argument("--resume", action="store_true", help="continue the run in --out, skipping finished cells")
    run.add_argument("--fresh", action="store_true", help="start over; the previous run folder is kept beside it")
    run.add_argument("--jobs", type=int, default=min(4, os.cpu_count() or 1),
                     help="worker processes; pairs run in parallel (default: the cores, at most 4)")
    run.set_defaults(func=cmd_run)

    reg = sub.add_parser("regress", help="check a suite's mean scores against its committed baseline")
    reg.add_argument("--suite", default="quick")
    reg.add_argument("--update", action="store_true", help="rewrite the baseline with the current scores")
    reg.add_argument("--data-root")
    reg.add_argument("--rtol", type=float, default=1e-4, help="relative tolerance in the worse direction")
    reg.add_argument("--jobs", type=int, default=1)
    reg.set_defaults(func=cmd_regress)

    fuse = sub.add_parser("fuse", help="fuse one pair of images")
    fuse.add_argument("a")
    fuse.add_argument("b")
    fuse.add_argument("-o", "--output", required=True)
    fuse.add_argument("--method", default="dwt")
    fuse.add_argument("--param", action="append", metavar="NAME=VALUE", help="method parameter (repeatable)")
    fuse.add_argument("--force", action="store_true", help="overwrite an existing output file")
    # volumes (NIfTI files, DICOM series folders): bench/volumes.py
    fuse.add_argument("--axis", default="axial", help="volumes: slice axis (axial, coronal, sagittal)")
    fuse.add_argument("--resample", action="store_true", help="volumes: put B on A's grid when they differ")
    fuse.add_argument("--norm-a", default="auto", help="volumes: intensity window of A (auto, mr, ct-brain, "
                      "ct-subdural, ct-soft, ct-bone)")
    fuse.add_argument("--norm-b", default="auto", help="volumes: intensity window of B (as --norm-a)")
    fuse.set_defaults(func=cmd_fuse)

    met = sub.add_parser("metrics", help="metrics of a fused image, or of folders of them")
    met.add_argument("A", nargs="?")
    met.add_argument("B", nargs="?")
    met.add_argument("F", nargs="?")
    met.add_argument("--a", dest="a_dir")
    met.add_argument("--b", dest="b_dir")
    met.add_argument("--f", dest="f_dir")
    met.add_argument("--metrics", help="comma-separated metric names (default: all)")
    met.add_argument("--convention", default="default")
    met.add_argument("--json", action="store_true",
                     help="JSON instead of a table or CSV; a metric undefined on its input (NaN) is null")
    met.add_argument("--jobs", type=int, default=1, help="processes for folder mode")
    met.add_argument("-o", "--output", help="file for the scores, CSV (JSON with --json); default: stdout")
    met.add_argument("--force", action="store_true", help="overwrite an existing --output file")
    met.set_defaults(func=cmd_metrics)

    trn = sub.add_parser("train", help="train a trainable method (densegan and its ablations)")
    trn.add_argument("--method", default="densegan",
                     help="densegan, densegan-nodense, densegan-noloss, densegan-noloss-nodense, densegan-lean")
    from methods.densegan.arguments import add_train_arguments
    add_train_arguments(trn)
    trn.set_defaults(func=cmd_train)

    cmp = sub.add_parser("campaign", help="train a campaign file's (method, seed) runs; resumable, parallel")
    cmp.add_argument("file", help="campaign YAML, e.g. methods/configs/campaign-harvard.yaml")
    cmp.add_argument("--jobs", type=int, default=1, help="runs trained at once (one torch thread each)")
    cmp.add_argument("--only", help="comma-separated run names (<method>-s<seed>)")
    cmp.add_argument("--status", action="store_true", help="write and print nothing but the campaign table")
    cmp.add_argument("--nice", type=int, default=0, help="niceness added to each training process")
    cmp.add_argument("--out", help="output folder (default: the campaign file's `out`)")
    cmp.add_argument("--report", action="store_true",
                     help="write <out>/index.html (table, validation curves against the baselines); trains nothing")
    cmp.add_argument("--ship", action="store_true",
                     help="copy each configuration's validation-best finished seed into methods/weights/")
    cmp.add_argument("--replace", action="store_true", help="with --ship: replace the shipped weights files")
    cmp.set_defaults(func=cmd_campaign)

    lst = sub.add_parser("list", help="list suites, datasets, methods and metrics")
    lst.add_argument("what", nargs="?", choices=["suites", "datasets", "methods", "metrics"])
    lst.set_defaults(func=cmd_list)

    from bench.weights import add_weights_command   # published weights of the deep peers (issue #17)
    add_weights_command(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    args.argv = argv
    metric_warnings_as_lines()
    try:
        return args.func(args)
    except UserError as exc:
        if args.debug:
            raise
        return report_user_error(exc)
    except KeyboardInterrupt:
        print("interrupted; finished cells are kept (re-run with --resume)", file=sys.stderr)
        return 130
