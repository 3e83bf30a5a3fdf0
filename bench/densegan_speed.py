"""Speed and cost of the dense-block GAN family: parameters, GMAC per pair, median ms per 256x256 pair.

    python -m bench.densegan_speed [--threads 2] [--size 256] [--repeats 30] [--untrained]

MACs are counted from the model itself (forward hooks on every Conv2d, ``model.count_macs``). Time is the
whole registered method call (numpy in, numpy out, model cached) on ``--threads`` CPU threads, median
of ``--repeats`` runs after 3 warm-up runs, by two clocks: the wall clock (what a user waits; inflated
when other processes share the cores) and the process CPU clock (all threads summed; barely disturbed by
other processes). On an idle machine wall >= CPU / threads, with equality for perfect thread scaling, so
CPU / threads is the best case the wall clock can reach and wall is the honest figure when idle. ``--untrained`` times randomly initialised generators of the
shipped configurations (the cost does not depend on the weights), for variants without shipped files.
Timings depend on the load of the machine: say how busy it was when quoting them.
"""
from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np


def variant_configs() -> dict:
    """Generator config of every registered variant, from its training YAML (cpu profile)."""
    from methods.densegan import VARIANTS
    from methods.densegan.train import resolve_config
    return {name: resolve_config(name)["model"] for name in VARIANTS}


def measure(threads: int = 2, size: int = 256, repeats: int = 30, untrained: bool = False) -> list[dict]:
    import torch

    from methods.densegan import VARIANTS, WEIGHTS_DIR, fuse_with_generator
    from methods.densegan.checkpoint import load_generator, save_generator
    from methods.densegan.model import Generator, GeneratorConfig, count_macs, count_parameters

    torch.set_num_threads(threads)
    rng = np.random.default_rng(0)
    a, b = (rng.random((size, size), dtype=np.float32) for _ in range(2))
    rows = []
    tmp_dir = None
    for name, model_cfg in variant_configs().items():
        weights = WEIGHTS_DIR / f"{name}.safetensors"
        if not weights.is_file():
            if not untrained:
                print(f"# {name}: no shipped weights ({weights}); rerun with --untrained to time its architecture")
                continue
            import tempfile
            tmp_dir = tmp_dir or tempfile.mkdtemp(prefix="densegan_speed_")
            weights = save_generator(Generator(GeneratorConfig.from_dict(model_cfg)),
                                     os.path.join(tmp_dir, f"{name}.safetensors"))
        generator = load_generator(weights)
        x = torch.zeros(1, 1, size, size)
        macs = count_macs(generator, x, x)
        for _ in range(3):
            fuse_with_generator(a, b, weights)
        times, cpu_times = [], []
        for _ in range(repeats):
            t0, c0 = time.perf_counter(), time.process_time()
            fuse_with_generator(a, b, weights)
            times.append(time.perf_counter() - t0)
            cpu_times.append(time.process_time() - c0)
        rows.append({"method": name, "params": count_parameters(generator), "gmac_per_pair": macs / 1e9,
                     "median_ms": 1e3 * statistics.median(times), "min_ms": 1e3 * min(times),
                     "cpu_ms": 1e3 * statistics.median(cpu_times),
                     "weights": "shipped" if weights.parent == WEIGHTS_DIR else "untrained"})
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--untrained", action="store_true")
    args = parser.parse_args(argv)
    rows = measure(args.threads, args.size, args.repeats, args.untrained)
    load = os.getloadavg()
    print(f"# {args.size}x{args.size} pair, {args.threads} torch threads, median of {args.repeats}; "
          f"load average at the end {load[0]:.2f} on {os.cpu_count()} CPUs")
    print(f"| {'method':<24} | {'params':>7} | {'GMAC/pair':>9} | {'wall median ms':>14} | {'wall min ms':>11} "
          f"| {'CPU median ms':>13} | {'CPU/threads ms':>14} | weights |")
    print(f"|{'-' * 26}|{'-' * 9}|{'-' * 11}|{'-' * 16}|{'-' * 13}|{'-' * 15}|{'-' * 16}|---------|")
    for r in rows:
        print(f"| {r['method']:<24} | {r['params']:>7d} | {r['gmac_per_pair']:>9.3f} | {r['median_ms']:>14.1f} "
              f"| {r['min_ms']:>11.1f} | {r['cpu_ms']:>13.1f} | {r['cpu_ms'] / args.threads:>14.1f} | {r['weights']} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
