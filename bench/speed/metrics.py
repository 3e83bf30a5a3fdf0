"""Speed table of the metric suite: ``python -m bench.speed.metrics [--convention C] [--repeat N]``.

Prints, per metric, our median milliseconds per 256x256 triple (over the reference triples of
../shared/reference/metrics, or a synthetic triple when that folder is absent), the reference
implementation's median seconds per triple from timing.csv (CDDFuse where it has the metric, else the
fastest other suite), and the speed-up; then ``metrics.compute`` per triple on the whole suite, on the
suite without the three FMI variants and on the 12 Evaluator.py metrics; then the whole suite on one
1024x1024 triple (a reference triple upsampled, bicubic), its time and peak memory (numpy's allocations,
tracemalloc). First of all, the start-up: the first ``metrics.compute`` call of the process, which
loads the compiled (numba) kernels -- from numba's disk cache, or compiling them where there is none
(``NUMBA_CACHE_DIR=$(mktemp -d)`` shows the cold compile). Runs on one thread (OMP_NUM_THREADS=1 is set
before numpy loads). ``--clock cpu`` (default) times with the process CPU clock, which on a shared
machine is far less disturbed by other processes than the wall clock (``--clock wall``); on an idle
machine they agree. ``--numpy-path`` times the numpy fallback that runs where numba is missing.

``--versus DIR`` instead times this checkout against another checkout DIR of the repository side by
side: ``metrics.compute`` on the whole suite, without FMI and on the 12 Evaluator.py metrics, each
checkout in its own process, the two alternated for ``--rounds`` rounds (this one first, then DIR first,
...), and prints each round's milliseconds and the speed-up. Absolute times differ between machines of
the same kind by 2-3x; a ratio measured this way does not. The README's targets are stated against
the code as it was when the speed issue was filed: ``git worktree add ../filing 2dc953a``, then
``python -m bench.speed.metrics --versus ../filing``.
"""
import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import argparse  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

# our metric name -> timing.csv (impl, metric) rows
REFERENCE_TIMING = {"EN": "EN", "SD": "SD", "SF": "SF", "AG": "AG", "MI": "MI", "MSE": "MSE", "CC": "CC",
                    "PSNR": "PSNR", "SCD": "SCD", "VIF": "VIF", "Qabf": "Qabf", "SSIM": "SSIM", "EI": "EI",
                    "CE": "CE", "RMSE": "RMSE", "Qcb": "Qcb", "Qcv": "Qcv", "Nabf": "Nabf", "MS_SSIM": "MS_SSIM",
                    "NMI": "Q_MI", "NCIE": "Q_NCIE", "FMI_pixel": "FMI_none", "FMI_dct": "FMI_dct", "Qp": "Q_P", "Qy": "Q_Y", "Qc": "Q_C", "Qw": "Q_S", "Qe": "Q_S"}


def _triples():
    from common.io import read_image
    files, root = _triple_files()
    if files:
        return [tuple(np.asarray(read_image(p), np.float64) for p in t) for t in files], root
    rng = np.random.default_rng(0)
    a, b = rng.random((256, 256)), rng.random((256, 256))
    return [(a, b, (a + b) / 2)], None


def _triple_files():
    """([[A, B, F] PNG paths] of the reference triples, their folder), or ([], None) without them."""
    shared = Path(os.environ.get("FUSION_SHARED", Path(__file__).resolve().parents[3] / "shared"))
    root = shared / "reference" / "metrics"
    if not (root / "triples.csv").is_file():
        return [], None
    import pandas as pd
    t = pd.read_csv(root / "triples.csv")
    return [[str(root / r[k]) for k in ("A", "B", "F")] for _, r in t.iterrows()], root


def _reference_seconds(root):
    if root is None or not (root / "timing.csv").is_file():
        return {}
    import pandas as pd
    t = pd.read_csv(root / "timing.csv")
    if (root / "timing_fmi.csv").is_file():  # Tang's FMI, timed on the four 'lap' triples only
        t = pd.concat([t, pd.read_csv(root / "timing_fmi.csv")])
    med = t.groupby(["impl", "metric"])["seconds"].median()
    out = {}
    for ours, theirs in REFERENCE_TIMING.items():
        rows = {impl: s for (impl, m), s in med.items() if m == theirs}
        if "cddfuse" in rows:
            out[ours] = ("cddfuse", rows["cddfuse"])
        elif rows:
            impl = min(rows, key=rows.get)
            out[ours] = (impl, rows[impl])
    return out


def _positive(text: str) -> int:
    """An argparse type: a whole number of at least 1 (0 rounds or repeats would leave nothing to time)."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of at least 1")
    return value


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--convention", default="cddfuse")
    parser.add_argument("--repeat", type=_positive, default=3)
    parser.add_argument("--clock", choices=("cpu", "wall"), default="cpu")
    parser.add_argument("--numpy-path", action="store_true",
                        help="block numba's import: every metric on its numpy fallback (as without numba)")
    parser.add_argument("--versus", type=Path, metavar="DIR",
                        help="instead: this checkout against another checkout DIR, side by side (see above)")
    parser.add_argument("--rounds", type=_positive, default=3, help="with --versus: alternated rounds")
    parser.add_argument("--values", type=Path, metavar="JSON",
                        help="instead: write every metric under every convention on the triples, from one "
                             "compute and alone, as exact hex floats (compare two commits' files with diff)")
    args = parser.parse_args(argv)
    if args.versus:
        return versus(args.versus, args.rounds, args.repeat, args.convention, args.clock, args.numpy_path)
    if args.numpy_path:
        sys.modules["numba"] = None     # "import numba" raises ImportError from here on
    import metrics
    triples, root = _triples()
    if args.values:
        return write_values(metrics, triples, args.values)
    ref = _reference_seconds(root)
    clock = time.process_time if args.clock == "cpu" else time.perf_counter
    _print_start_up(metrics, triples[0], args.convention, clock)
    rows, total = [], 0.0
    for name, m in metrics.METRICS.items():
        conv = args.convention if args.convention in m.conventions else "default"
        times = []
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for a, b, f in triples:
                best = min(_timed(m.fn, a, b, f, conv, clock) for _ in range(args.repeat))
                times.append(best)
        ms = 1000 * float(np.median(times))
        total += ms
        impl, sec = ref.get(name, ("", float("nan")))
        rows.append((name, conv, ms, impl, sec, sec * 1000 / ms if sec == sec else float("nan")))
    print(f"{'metric':10s} {'conv':8s} {'ours ms':>9s} {'ref impl':>9s} {'ref s':>9s} {'speed-up':>9s}")
    for name, conv, ms, impl, sec, ratio in rows:
        print(f"{name:10s} {conv:8s} {ms:9.2f} {impl:>9s} {sec:9.4f} {ratio:9.1f}")
    cdd = [(ms, sec) for name, _, ms, impl, sec, _ in rows if impl == "cddfuse"]
    if cdd:
        ours, theirs = sum(c[0] for c in cdd), sum(c[1] for c in cdd)
        print(f"\nCDDFuse's {len(cdd)} Evaluator.py metrics: ours {ours:.1f} ms, reference {theirs:.3f} s, "
              f"speed-up {theirs * 1000 / ours:.1f}x")
    print(f"whole suite ({len(rows)} metrics): {total:.1f} ms per triple (sum of the rows), "
          f"1 thread, {args.clock} clock")
    # the entry point users call: one compute() per triple (colour/shape checks included)
    groups = [("whole suite", None), ("whole suite without FMI", [c[0] for c in rows if not c[0].startswith("FMI")])]
    groups += [("Evaluator.py 12", [c[0] for c in rows if c[3] == "cddfuse"])] if cdd else []
    for label, names in groups:
        times = []
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for a, b, f in triples:
                times.append(min(_timed_compute(metrics.compute, a, b, f, names, args.convention, clock)
                                 for _ in range(args.repeat)))
        print(f"metrics.compute, {label}: {1000 * float(np.median(times)):.1f} ms per triple")
    _print_large(metrics, triples[0], args.convention, args.repeat, clock)


GROUPS = ("whole suite", "whole suite without FMI", "Evaluator.py 12")

# Run in the other checkout's directory with only that checkout's root ahead of site-packages, so that
# ``import metrics`` is that checkout's (checked), and nothing of this one is imported. It reads the
# 8-bit PNGs with Pillow itself (an older checkout may lack today's image reader).
_WORKER = r"""
import json, os, sys, time, warnings
import numpy as np
from PIL import Image
if sys.argv[1] == "numpy-path":
    sys.modules["numba"] = None
import metrics
root = os.path.realpath(os.getcwd())
if not os.path.realpath(metrics.__file__).startswith(root + os.sep):
    sys.exit(f"imported {metrics.__file__}, not the metrics of {root}")
spec = json.loads(sys.stdin.read())
clock = time.process_time if spec["clock"] == "cpu" else time.perf_counter
triples = [[np.asarray(Image.open(p), np.float64) / 255.0 for p in t] for t in spec["triples"]]
names = list(metrics.METRICS)
groups = {"whole suite": names, "whole suite without FMI": [n for n in names if not n.startswith("FMI")],
          "Evaluator.py 12": spec["evaluator"]}
out = {}
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    metrics.compute(*triples[0], convention=spec["convention"])       # kernels loaded, caches warm
    for label, selected in groups.items():
        times = []
        for a, b, f in triples:
            best = float("inf")
            for _ in range(spec["repeat"]):
                t0 = clock()
                metrics.compute(a, b, f, names=selected, convention=spec["convention"])
                best = min(best, clock() - t0)
            times.append(best)
        out[label] = 1000 * float(np.median(times))
print(json.dumps(out))
"""


def versus(other: Path, rounds: int, repeat: int, convention: str, clock: str, numpy_path: bool) -> int:
    """``--versus``: both checkouts' ``metrics.compute`` times, alternated, and the speed-ups."""
    import json
    import subprocess

    from metrics.sets import EVALUATOR_PY
    here = Path(__file__).resolve().parents[2]
    other = other.resolve()
    if not (other / "metrics" / "registry.py").is_file():
        print(f"error: --versus {other}: not a checkout of this repository (no metrics/registry.py)", file=sys.stderr)
        return 2
    triples, _ = _triple_files()
    if not triples:
        print("error: --versus needs the reference triples (../shared/reference/metrics or FUSION_SHARED)",
              file=sys.stderr)
        return 2
    spec = json.dumps({"triples": triples, "repeat": repeat, "convention": convention, "clock": clock,
                       "evaluator": list(EVALUATOR_PY)})
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
    times = {here: [], other: []}
    for r in range(rounds):
        for tree in ((here, other) if r % 2 == 0 else (other, here)):
            run = subprocess.run([sys.executable, "-c", _WORKER, "numpy-path" if numpy_path else "compiled"],
                                 input=spec, capture_output=True, text=True, cwd=tree,
                                 env=dict(env, PYTHONPATH=str(tree)))
            if run.returncode != 0:
                last = (run.stderr.strip().splitlines() or ["no output"])[-1]
                print(f"error: timing the metrics of {tree} failed: {last}", file=sys.stderr)
                return 1
            times[tree].append(json.loads(run.stdout.strip().splitlines()[-1]))
            print(f"round {r + 1}/{rounds}: {tree.name}: "
                  + ", ".join(f"{k} {v:.1f} ms" for k, v in times[tree][-1].items()), flush=True)
    print(f"\n{len(triples)} reference triples, median per round of the best of {repeat} per triple; {clock} clock, "
          f"one thread, {rounds} rounds alternated; convention {convention}")
    cells = {label: [" / ".join(f"{t[label]:.0f}" for t in times[tree]) for tree in (here, other)] for label in GROUPS}
    width = max(len(c) for pair in cells.values() for c in pair) + 2
    print(f"{'':26s}{'this checkout (ms)':>{width}s}{other.name + ' (ms)':>{width}s}{'speed-up':>10s}")
    for label in GROUPS:
        ratio = float(np.median([b[label] / a[label] for a, b in zip(times[here], times[other])]))
        print(f"{label:26s}{cells[label][0]:>{width}s}{cells[label][1]:>{width}s}{ratio:9.2f}x")
    print("(speed-up: the median over rounds of the other checkout's time over this one's)")
    return 0


def exact_values(metrics, triples) -> dict:
    """``{"<triple> <convention> <metric> <compute|alone>": float.hex(value)}`` for every metric under every
    convention it supports, from one ``compute`` of all and from a ``compute`` of that metric alone (no
    shared intermediate results): the record that a speed change kept every value to the bit."""
    values = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for t, (a, b, f) in enumerate(triples):
            for convention in metrics.CONVENTIONS:
                together = metrics.compute(a, b, f, convention=convention)
                for name, m in metrics.METRICS.items():
                    if convention not in m.conventions:
                        continue
                    values[f"{t} {convention} {name} compute"] = float(together[name]).hex()
                    alone = metrics.compute(a, b, f, [name], convention=convention)[name]
                    values[f"{t} {convention} {name} alone"] = float(alone).hex()
    return values


def write_values(metrics, triples, path: Path) -> int:
    """The ``--values`` file (refuses to replace an existing file: one line, exit 2)."""
    from common.errors import UserError
    from common.io import check_writable, write_json
    try:
        check_writable(path)
        write_json(path, exact_values(metrics, triples), overwrite=False)
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"{len(triples)} triples x every metric and convention -> {path}")
    return 0


def _print_start_up(metrics, triple, convention, clock):
    """The first compute() of the process against the next one: the difference is the kernels' load
    (or compile) time, paid once per process."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        first = _timed_compute(metrics.compute, *triple, None, convention, clock)
        second = _timed_compute(metrics.compute, *triple, None, convention, clock)
    print(f"start-up: first metrics.compute of the process {1000 * first:.0f} ms, the next {1000 * second:.0f} ms "
          f"(compiled kernels loaded or compiled: {1000 * (first - second):.0f} ms, once per process)\n")


def _print_large(metrics, triple, convention, repeat, clock, side=1024):
    """The whole suite on one side x side triple: time (fastest of ``repeat``) and peak memory."""
    import tracemalloc

    from scipy import ndimage
    big = [np.clip(ndimage.zoom(x, side / x.shape[0], order=3), 0, 1) for x in triple]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        seconds = min(_timed_compute(metrics.compute, *big, None, convention, clock) for _ in range(repeat))
        tracemalloc.start()
        metrics.compute(*big, convention=convention)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    print(f"metrics.compute, whole suite, one {side}x{side} triple: {1000 * seconds:.0f} ms, "
          f"peak memory {peak / 2 ** 20:.0f} MiB (numpy allocations; not counted: torch's FFT in Qp holds a "
          f"second copy of the 24 filter responses during its call, {24 * 8 * side * side / 2 ** 20:.0f} MiB)")


def _timed_compute(compute, a, b, f, names, convention, clock):
    t0 = clock()
    compute(a, b, f, names=names, convention=convention)
    return clock() - t0


def _timed(fn, a, b, f, conv, clock):
    t0 = clock()
    fn(a, b, f, convention=conv)
    return clock() - t0


if __name__ == "__main__":
    raise SystemExit(main())
