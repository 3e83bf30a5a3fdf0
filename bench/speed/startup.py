"""Start-up time of the command line: ``bench list``, ``bench --help`` and one ``fuse`` with a classical method.

    python -m bench.speed.startup [--repeats 5]

Each command runs in a fresh interpreter (what a user waits for), from a temporary folder, ``--repeats``
times interleaved; the table gives min and median wall seconds. The targets on 2 cores
(issue #18): ``list`` and ``--help`` under 1.5 s, ``fuse`` with a classical method under 3 s end to end.
Importing ``methods`` imports no torch and no scipy.signal (they load when a method first needs them).
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

from bench.datasets import PACKAGE_ROOT


def _run(cmd: list[str], cwd: str) -> float:
    t0 = time.perf_counter()
    subprocess.run(cmd, cwd=cwd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        from PIL import Image
        rng = np.random.default_rng(0)
        for name in ("a.png", "b.png"):
            Image.fromarray((rng.random((256, 256)) * 255).astype(np.uint8)).save(os.path.join(tmp, name))
        py = [sys.executable, "-m", "bench"]
        commands = {"bench list": py + ["list"], "bench --help": py + ["--help"],
                    "bench fuse (dwt, 256x256)": py + ["fuse", "a.png", "b.png", "-o", "f.png", "--method", "dwt",
                                                       "--force"]}
        env_path = os.pathsep.join([str(PACKAGE_ROOT),
                                    os.environ.get("PYTHONPATH", "")])
        os.environ["PYTHONPATH"] = env_path
        times = {k: [] for k in commands}
        for _ in range(args.repeats):
            for name, cmd in commands.items():
                times[name].append(_run(cmd, tmp))
    print(f"# fresh interpreter per command, {args.repeats} interleaved repeats; load average "
          f"{os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")
    print("| command | min s | median s |")
    print("|---|---|---|")
    for name, t in times.items():
        print(f"| {name} | {min(t):.2f} | {statistics.median(t):.2f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
