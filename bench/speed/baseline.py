"""Speed table of the classical baselines: ``python -m bench.speed.baseline [--threads N] [--pairs K] [--repeat R]``.

For each MST / MST-SR / SR method, GFF, LLF-IOI, NSCT-PCNN, NSST-PAPCNN, CSMCA, LatLRR, MDLatLRR and
Bayesian fusion, prints our median seconds per 256x256 pair
(process CPU time and wall time, over ``--pairs`` of the reference pairs in
../shared/reference/baselines/inputs, or synthetic pairs when that folder is absent), the Octave CPU
seconds per pair of the authors' code (mean over pairs in ``timings.tsv``) and the ratio
Octave / ours (CPU). With ``--repeat R`` each pair runs R times and its fastest run counts (other
tenants of a shared machine only ever add time). Thread counts (OMP, OpenBLAS, MKL, torch) are set
to ``--threads`` (default 2) before numpy loads. The -SR methods use the project's own dictionary unless ``--authors-dictionary``
(the authors' D_100000_256_8.mat: same size, so the same cost per OMP step; the atom counts differ).
On a shared machine the CPU clock is the steadier of the two; with 2 threads it counts both threads.
"""
import os
import sys


def _threads_from_argv(default: int = 2) -> str:
    for i, arg in enumerate(sys.argv):
        if arg == "--threads" and i + 1 < len(sys.argv):
            return sys.argv[i + 1]
        if arg.startswith("--threads="):
            return arg.split("=", 1)[1]
    return str(default)


_THREADS = _threads_from_argv()
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = _THREADS

import argparse  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

METHODS = ("lp", "rp", "dwt", "dtcwt", "nsct", "gff", "llf_ioi", "nsct_pcnn", "nsst_papcnn", "csmca",
           "sr", "lp_sr", "rp_sr", "dwt_sr", "dtcwt_sr", "nsct_sr", "latlrr", "mdlatlrr", "bayesian_fusion")
SR_METHODS = {"sr", "lp_sr", "rp_sr", "dwt_sr", "dtcwt_sr", "nsct_sr"}
BASELINES = Path(os.environ.get("FUSION_SHARED", Path(__file__).resolve().parents[3] / "shared")) / "reference" / "baselines"
HARVARD_PAIRS = ("harvard_CT-MRI_16009", "harvard_PET-MRI_25015", "harvard_SPECT-MRI_10018",
                 "harvard_CT-MRI_16010", "harvard_PET-MRI_25022", "harvard_SPECT-MRI_11010")


def _pairs(k: int):
    from common.io import read_image
    if (BASELINES / "inputs").is_dir():
        return [(read_image(BASELINES / "inputs" / f"{p}_A.png"), read_image(BASELINES / "inputs" / f"{p}_B.png"))
                for p in HARVARD_PAIRS[:k]]
    from scipy.ndimage import gaussian_filter
    rng = np.random.default_rng(0)
    return [tuple(gaussian_filter(rng.random((256, 256)), 2).astype(np.float32) for _ in range(2)) for _ in range(k)]


def _octave_cpu_seconds() -> dict[str, float]:
    path = BASELINES / "timings.tsv"
    if not path.is_file():
        return {}
    rows = [line.split("\t") for line in path.read_text().splitlines()[1:] if line.strip()]
    per_method: dict[str, list[float]] = {}
    for method, _pair, _wall, cpu in rows:
        per_method.setdefault(method, []).append(float(cpu))
    return {m: float(np.mean(v)) for m, v in per_method.items()}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.speed.baseline", description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--pairs", type=int, default=3, help="reference pairs to time (1-6)")
    parser.add_argument("--repeat", type=int, default=1, help="runs per pair; the fastest (wall) counts")
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--authors-dictionary", action="store_true")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    import methods
    pairs = _pairs(max(1, min(args.pairs, len(HARVARD_PAIRS))))
    octave = _octave_cpu_seconds()
    extra = {"dictionary": str(BASELINES / "dictionaries" / "D_100000_256_8.mat")} if args.authors_dictionary else {}
    methods.fuse(*pairs[0], "lp")                              # warm-up: imports, filter caches
    print(f"# {len(pairs)} pair(s) of 256x256, {args.threads} thread(s); seconds per pair (median)")
    print(f"{'method':<11} {'cpu_s':>8} {'wall_s':>8} {'octave_cpu_s':>13} {'octave/ours':>12}")
    for name in args.methods.split(","):
        kwargs = extra if name in SR_METHODS else {}
        cpu, wall = [], []
        for a, b in pairs:
            runs = []
            for _ in range(max(1, args.repeat)):
                c0, w0 = time.process_time(), time.perf_counter()
                methods.fuse(a, b, name, **kwargs)
                runs.append((time.perf_counter() - w0, time.process_time() - c0))
            fastest = min(runs)                    # other tenants only ever add time (timeit's rule)
            wall.append(fastest[0])
            cpu.append(fastest[1])
        ours = float(np.median(cpu))
        ref = octave.get(name)
        ref_text = f"{ref:13.2f}" if ref is not None else f"{'-':>13}"
        ratio = f"{ref / ours:12.2f}" if ref is not None else f"{'-':>12}"
        print(f"{name:<11} {ours:8.3f} {float(np.median(wall)):8.3f} {ref_text} {ratio}", flush=True)


if __name__ == "__main__":
    main()
