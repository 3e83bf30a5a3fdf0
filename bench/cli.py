"""``python -m bench``: run suites, fuse one pair, compute metrics, list what exists.

User mistakes (``UserError``) print one ``error: ...`` line and exit with status 2; ``--debug`` shows
the traceback instead.
"""
from __future__ import annotations

import argparse
import json
import os
import sys

from bench.errors import UserError, first_few, metric_warnings_as_lines, report_user_error


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
    from bench.io import read_image, write_image

    out = Path(args.output)
    if out.exists() and not args.force:
        raise UserError(f"{out}: already exists (use --force to overwrite)")
    params = {}
    for item in args.param or []:
        key, sep, value = item.partition("=")
        if not sep:
            raise UserError(f"--param {item!r}: expected NAME=VALUE")
        params[key] = _parse_value(value)
    fused = methods.fuse(read_image(args.a), read_image(args.b), args.method, **params)
    write_image(out, fused, overwrite=args.force)
    print(f"wrote {out}")
    return 0


def _parse_value(text: str):
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return {"true": True, "false": False, "none": None}.get(text.lower(), text)


def cmd_metrics(args) -> int:
    import metrics
    from bench.io import read_image

    names = _csv_list(args.metrics)
    if args.a_dir or args.b_dir or args.f_dir:
        if not (args.a_dir and args.b_dir and args.f_dir):
            raise UserError("folder mode needs all of --a DIR --b DIR --f DIR")
        from metrics.folder import evaluate_folders
        from bench.io import write_text

        failures: list[str] = []
        table = evaluate_folders(args.a_dir, args.b_dir, args.f_dir, names, args.convention, args.jobs, failures)
        if args.output:
            write_text(args.output, table.to_csv(), overwrite=args.force)
            print(f"wrote {args.output} ({len(table)} images)")
        else:
            print(table.to_csv(), end="")
        if failures:  # what was scored is written above; the run still fails, naming what was not
            raise UserError(f"{len(failures)} of {len(table) + len(failures)} image(s) not scored: "
                            + first_few(failures, 3, "; "))
        return 0
    if not (args.A and args.B and args.F):
        raise UserError("give three images A B F, or --a DIR --b DIR --f DIR")
    scores = metrics.compute(read_image(args.A), read_image(args.B), read_image(args.F), names,
                             convention=args.convention)
    if args.json:
        print(json.dumps(scores, indent=2))
    else:
        width = max(map(len, scores))
        for name, value in scores.items():
            print(f"{name:<{width}}  {value:.6g}")
    return 0


def cmd_train(args) -> int:
    from methods.densegan.train import run_train

    run_train(args)
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
    met.add_argument("--json", action="store_true")
    met.add_argument("--jobs", type=int, default=1, help="processes for folder mode")
    met.add_argument("-o", "--output", help="CSV file for folder mode (default: stdout)")
    met.add_argument("--force", action="store_true")
    met.set_defaults(func=cmd_metrics)

    trn = sub.add_parser("train", help="train a trainable method (densegan and its ablations)")
    trn.add_argument("--method", default="densegan",
                     help="densegan, densegan-nodense, densegan-noloss, densegan-noloss-nodense, densegan-lean")
    from methods.densegan.arguments import add_train_arguments
    add_train_arguments(trn)
    trn.set_defaults(func=cmd_train)

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
