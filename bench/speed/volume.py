"""Speed and peak memory of fusing a clinical-size volume pair slice by slice from the command line.

    python -m bench.speed.volume [--method densegan] [--threads 2] [--size 240] [--slices 155] [--repeats 1]

Writes a BraTS-size MR-T1-Gad + MR-T2 pair (``--size`` x ``--size`` x ``--slices``, 1 mm, int16 NIfTI) made
from the embedded phantom (``bench.volumes.phantom_volumes``: 8 distinct slices repeated; every slice holds a
head, the worst case: real BraTS volumes have about a third empty slices, which are not fused) into a
temporary folder, then runs ``python -m bench fuse A B -o F.nii.gz --method M`` as a child process with
``OMP_NUM_THREADS`` = ``--threads`` and reports, per run, its wall time (start to exit: imports, reading,
normalising, fusing, writing), its CPU time (all threads; CPU / threads is the wall time an idle machine
with perfect thread scaling would give) and its peak resident memory (the child's ``ru_maxrss``). The same
command with ``average`` (``--floor``) runs first: everything but the fusion itself (imports, gzip, I/O,
percentiles). The issue's target
for densegan is under 60 s on 2 threads with under 2 GB peak. Timings depend on the machine's load: say how
busy it was when quoting them.
"""
from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

TARGET_SECONDS, TARGET_GIB = 60.0, 2.0


def write_pair(folder: Path, size: int, slices: int) -> tuple[Path, Path]:
    import nibabel as nib

    from bench.volumes import phantom_volumes

    a, b = phantom_volumes(slices=slices, size=size, distinct=8)
    paths = folder / "case_t1ce.nii.gz", folder / "case_t2.nii.gz"
    for vol, path in zip((a, b), paths):
        nib.save(nib.Nifti1Image(np.round(vol).astype(np.int16), np.eye(4)), path)
    return paths


def fuse_once(a: Path, b: Path, out: Path, method: str, threads: int) -> tuple[float, float, float]:
    """(wall seconds, CPU seconds, peak resident GiB) of one ``python -m bench fuse`` child process."""
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    command = [sys.executable, "-c",
               "import resource, sys; from bench.cli import main; rc = main(sys.argv[1:]); "
               "print('maxrss_kib', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr); "
               "sys.exit(rc)",
               "fuse", str(a), str(b), "-o", str(out), "--method", method, "--force"]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    if done.returncode != 0:
        raise SystemExit(f"fuse failed ({done.returncode}): {done.stderr.strip().splitlines()[-1]}")
    kib = next(int(line.split()[1]) for line in done.stderr.splitlines() if line.startswith("maxrss_kib"))
    return seconds, cpu, kib / 2 ** 20


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.speed.volume", description=__doc__.splitlines()[0])
    parser.add_argument("--method", default="densegan")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--size", type=int, default=240)
    parser.add_argument("--slices", type=int, default=155)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--floor", default="average", help="method timed first as the floor ('' to skip)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="volume_speed_") as tmp:
        a, b = write_pair(Path(tmp), args.size, args.slices)
        print(f"# {args.method}, {args.size}x{args.size}x{args.slices} pair, OMP_NUM_THREADS={args.threads}, "
              f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}")
        print(f"{'method':<12} {'run':>3} {'wall s':>8} {'CPU s':>8} {'ms/slice':>9} {'peak GiB':>9}")
        runs = [(args.floor, 1)] * bool(args.floor) + [(args.method, r + 1) for r in range(args.repeats)]
        for method, run in runs:
            seconds, cpu, gib = fuse_once(a, b, Path(tmp) / "fused.nii.gz", method, args.threads)
            print(f"{method:<12} {run:>3} {seconds:>8.1f} {cpu:>8.1f} {1000 * seconds / args.slices:>9.1f} "
                  f"{gib:>9.2f}")
        print(f"# targets: under {TARGET_SECONDS:.0f} s and {TARGET_GIB:.0f} GiB "
              f"({'met' if seconds < TARGET_SECONDS and gib < TARGET_GIB else 'NOT met'} in the last run)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
