"""Compute of the dense-block GAN: inference against the machine's convolution peak and IFCNN, training
throughput, and the peak memory of fusing a large pair.

    python -m bench.speed.densegan [--threads 2] [--repeats 15] [--skip-training] [--skip-memory]
    python -m bench.speed.densegan --profile        # where fuse_arrays' time goes, per operator

Every inference row is timed in the same run, **interleaved** (repeat r times every row once, in turn),
so a change of machine load hits all rows alike; the table gives min, median and max wall time per
256x256 pair (numpy in, numpy out, model loaded once). GMAC per pair are counted from the model
(``model.count_macs``: every Conv2d, both encoder passes). The machine's convolution peak is measured in
the same loop: one 64 -> 64 3x3 convolution on a 256x256 channels-last image (2.42 GMAC), the widest
layer of both networks; ``of peak`` is a row's GMAC/s over that peak's. Rows:

* ``densegan``, ``densegan-lean``: the shipped generators through ``fuse_arrays`` on torch's intra-op
  threads (``bands=1``), and the same with ``bands=threads`` (one single-threaded band per thread,
  the choice for a busy machine);
* ``densegan (methods.fuse, auto)``: the registered call as the runner's cells make it (``bands="auto"``:
  whichever of the two rows above was faster when last timed), also for the per-call overhead that
  batching pairs could save;
* ``densegan (forward)``: the same generator's plain ``Generator.forward`` (the training graph: reflection
  pad, convolution, ReLU and concatenation as separate passes, two intra-op threads), the pre-issue-#14
  inference path, for the ratio;
* ``ifcnn``: the project's IFCNN adapter (MAX scheme) when it is registered and its weights are found.

Training rows (``--skip-training`` to omit) run the real training step (``train_epoch``) on Harvard's
case-wise train parts for a few steps after a warm-up: pixels per second (and as 128x128 samples per
second), pixels per CPU second, and achieved GMAC/s counting forward and backward of G as 3x its forward
MACs. ``before`` is the previous ``cpu`` profile's settings (fp32, 4 x 128^2 patches, PNG decoding per
sample) on the current code; ``after`` the ``long`` profile's (bf16 autocast where the CPU runs it
natively, 16 x 64^2 patches, pairs decoded once), once in one process on ``--threads`` threads and once as
a campaign trains: ``--threads`` processes of one thread each, side by side (their pixels per second
summed). On a shared machine one process on two intra-op threads waits at every operation for its slower
thread; independent single-threaded runs do not.

The memory row fuses a 4096x4096 pair with ``densegan`` in a fresh process and reports its peak RSS
(``ru_maxrss``), the Python interpreter, torch and the three 64 MB images included.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

import numpy as np

from bench.datasets import PACKAGE_ROOT

MEMORY_SCRIPT = """
import resource, sys, numpy as np, torch
torch.set_num_threads({threads})
from methods.densegan import fuse_with_generator, shipped_weights
rng = np.random.default_rng(0)
a, b = (rng.random(({size}, {size}), dtype=np.float32) for _ in range(2))
f = fuse_with_generator(a, b, shipped_weights("densegan"))
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, float(f.mean()))
"""


def _inference_rows(threads: int, repeats: int, size: int = 256) -> list[dict]:
    import torch

    import methods
    from methods.densegan import cached_generator, shipped_weights
    from methods.densegan.inference import fuse_arrays
    from methods.densegan.model import count_macs

    torch.set_num_threads(threads)
    rng = np.random.default_rng(0)
    a, b = (rng.random((size, size), dtype=np.float32) for _ in range(2))
    x = torch.zeros(1, 1, size, size)
    conv = torch.nn.Conv2d(64, 64, 3, padding=1).to(memory_format=torch.channels_last)
    wide = torch.rand(1, 64, size, size).to(memory_format=torch.channels_last)

    def peak():
        with torch.inference_mode():
            conv(wide)

    rows = {"conv peak (64->64 3x3)": (peak, 64 * 64 * 9 * size * size)}
    for name in ("densegan", "densegan-lean"):
        g = cached_generator(shipped_weights(name))
        rows[name] = ((lambda g=g: fuse_arrays(g, a, b)), count_macs(g, x, x))
        rows[f"{name} ({threads} bands)"] = ((lambda g=g: fuse_arrays(g, a, b, bands=threads)), count_macs(g, x, x))
    g = cached_generator(shipped_weights("densegan"))
    ta, tb = (torch.from_numpy(v)[None, None].to(memory_format=torch.channels_last) for v in (a, b))

    def plain_forward():
        with torch.inference_mode():
            g(ta, tb)[0, 0].numpy()

    rows["densegan (forward)"] = (plain_forward, count_macs(g, x, x))
    # as a suite's cell calls it (parameter checks, weights lookup, colour rule, bands "auto"): the
    # registered path, and against the two fuse_arrays rows the per-call overhead batching pairs could save
    rows["densegan (methods.fuse, auto)"] = ((lambda: methods.fuse(a, b, "densegan")), count_macs(g, x, x))
    if "ifcnn" in methods.METHODS:
        try:
            methods.fuse(a, b, "ifcnn")
            macs = methods.METHODS["ifcnn"].complexity().get("macs")
            rows["ifcnn"] = ((lambda: methods.fuse(a, b, "ifcnn")), macs)
        except Exception as exc:      # weights missing: say so in the table's notes
            print(f"# ifcnn skipped: {str(exc).splitlines()[0]}")
    for fn, _ in rows.values():
        fn()
        fn()
    times = {name: [] for name in rows}
    for _ in range(repeats):
        for name, (fn, _) in rows.items():
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    peak_rate = rows["conv peak (64->64 3x3)"][1] / statistics.median(times["conv peak (64->64 3x3)"])
    ifcnn = statistics.median(times["ifcnn"]) if "ifcnn" in times else None
    out = []
    for name, (_, macs) in rows.items():
        med = statistics.median(times[name])
        out.append({"row": name, "gmac": macs / 1e9, "min_ms": 1e3 * min(times[name]), "median_ms": 1e3 * med,
                    "max_ms": 1e3 * max(times[name]), "gmac_per_s": macs / med / 1e9,
                    "of_peak": macs / med / peak_rate, "vs_ifcnn": (ifcnn / med) if ifcnn else None})
    return out


TRAIN_SETTINGS = {
    "before": ["optim.schedule=constant", "data.patch_size=128", "data.patches_per_pair=1", "data.cache=false",
               "train.batch_size=4", "train.precision=fp32", "train.ema_decay=null"],
    "after": [],
}
TRAIN_LABELS = {"before": "before (cpu profile: fp32, 4 x 128^2, PNG decoded per sample)",
                "after": "after (long profile: bf16 where native, 16 x 64^2, pairs decoded once)"}


def train_throughput(setting: str, threads: int, steps: int) -> dict:
    """Pixels per second of ``steps`` real training steps (after 3 warm-up steps) in this process."""
    import tempfile

    import torch

    from methods.densegan import train as trainer
    from methods.densegan.model import count_macs

    config = trainer.resolve_config("densegan", profile="long", overrides=[
        *TRAIN_SETTINGS[setting], f"train.threads={threads}", f"train.max_steps_per_epoch={steps + 3}",
        "data.val_datasets=[]"])
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as tmp:
        from bench.training import registry_datasets
        run = trainer.start_run(config, trainer.Path(tmp), resume=False, datasets=registry_datasets)
        batch, patch = int(config["train"]["batch_size"]), int(config["data"]["patch_size"])
        run.steps_per_epoch = 3
        trainer.train_epoch(run, 1)                 # warm-up (caches, allocator, oneDNN kernels)
        run.steps_per_epoch = steps
        t0, c0 = time.perf_counter(), time.process_time()
        trainer.train_epoch(run, 2)
        seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
    x = torch.zeros(1, 1, patch, patch)
    pixels = batch * patch * patch * steps
    return {"pixels_per_s": pixels / seconds, "pixels_per_cpu_s": pixels / cpu,
            "gmac_per_s": 3 * count_macs(run.generator, x, x) * batch * steps / seconds / 1e9,
            "precision": "bf16" if trainer.autocast_dtype(config["train"]["precision"], torch.device("cpu")) else "fp32"}


def _training_rows(threads: int, steps: int) -> list[dict]:
    """``before`` in one process on ``threads`` threads; ``after`` the same, then as a campaign trains:
    ``threads`` processes of one thread each at once (summed; each process is one run)."""
    rows = [{"row": TRAIN_LABELS["before"], "processes": f"1 x {threads} threads",
             **train_throughput("before", threads, steps)},
            {"row": TRAIN_LABELS["after"], "processes": f"1 x {threads} threads",
             **train_throughput("after", threads, steps)}]
    code = ("import json, sys; from bench.speed.densegan import train_throughput; "
            f"print(json.dumps(train_throughput('after', 1, {steps})))")
    root = str(PACKAGE_ROOT)
    procs = [subprocess.Popen([sys.executable, "-c", code], cwd=root, stdout=subprocess.PIPE, text=True,
                              env={**os.environ, "OMP_NUM_THREADS": "1"}) for _ in range(threads)]
    results = [json.loads(p.communicate()[0].strip().splitlines()[-1]) for p in procs]
    rows.append({"row": TRAIN_LABELS["after"], "processes": f"{threads} x 1 thread (campaign)",
                 "pixels_per_s": sum(r["pixels_per_s"] for r in results),
                 "pixels_per_cpu_s": statistics.mean(r["pixels_per_cpu_s"] for r in results),
                 "gmac_per_s": sum(r["gmac_per_s"] for r in results), "precision": results[0]["precision"]})
    return rows


def _memory_row(threads: int, size: int) -> dict:
    code = MEMORY_SCRIPT.format(threads=threads, size=size)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                          cwd=str(PACKAGE_ROOT))
    rss_kib, _ = done.stdout.split()
    return {"size": size, "peak_rss_gb": int(rss_kib) * 1024 / 1e9}


def profile_rows(threads: int, repeats: int, size: int = 256, top: int = 8) -> tuple[list[dict], float]:
    """torch.profiler's self CPU time per operator over ``repeats`` calls of ``fuse_arrays`` with the shipped
    ``densegan`` on a ``size`` x ``size`` pair (after a warm-up call): where the time goes that is not
    convolution. Returns the ``top`` operators (ms per pair, share) and the wall ms per pair."""
    import torch
    from torch.profiler import ProfilerActivity, profile

    from methods.densegan import cached_generator, shipped_weights
    from methods.densegan.inference import fuse_arrays

    torch.set_num_threads(threads)
    generator = cached_generator(shipped_weights("densegan"))
    rng = np.random.default_rng(0)
    a, b = (rng.random((size, size), dtype=np.float32) for _ in range(2))
    fuse_arrays(generator, a, b)
    start = time.perf_counter()
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(repeats):
            fuse_arrays(generator, a, b)
    wall_ms = (time.perf_counter() - start) * 1e3 / repeats
    events = [e for e in prof.key_averages() if e.self_cpu_time_total > 0]
    total = sum(e.self_cpu_time_total for e in events)
    events.sort(key=lambda e: e.self_cpu_time_total, reverse=True)
    rows = [{"op": e.key, "calls": e.count // repeats, "ms": e.self_cpu_time_total / 1e3 / repeats,
             "share": e.self_cpu_time_total / total} for e in events[:top]]
    return rows, wall_ms


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--train-steps", type=int, default=10)
    parser.add_argument("--memory-size", type=int, default=4096)
    parser.add_argument("--skip-training", action="store_true")
    parser.add_argument("--skip-memory", action="store_true")
    parser.add_argument("--profile", action="store_true",
                        help="print only torch.profiler's operator table of the shipped densegan's fuse_arrays")
    args = parser.parse_args(argv)
    if args.profile:
        ops, wall_ms = profile_rows(args.threads, args.repeats)
        print(f"# fuse_arrays, shipped densegan, 256x256, {args.threads} threads, {args.repeats} calls under "
              f"torch.profiler: {wall_ms:.1f} ms per pair (the profiler adds its own cost); each operator's self time "
              f"per pair as the profiler records it on the calling thread; load average {os.getloadavg()[0]:.2f}")
        print("| operator | calls/pair | ms/pair | share |\n|---|---|---|---|")
        for r in ops:
            print(f"| {r['op']} | {r['calls']} | {r['ms']:.2f} | {r['share']:.1%} |")
        return 0

    rows = _inference_rows(args.threads, args.repeats)
    print(f"# 256x256 pair, {args.threads} threads, {args.repeats} interleaved repeats; load average "
          f"{os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs at the end")
    print("| row | GMAC/pair | min ms | median ms | max ms | GMAC/s | of peak | x IFCNN |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        ratio = f"{r['vs_ifcnn']:.2f}" if r["vs_ifcnn"] else "-"
        print(f"| {r['row']} | {r['gmac']:.2f} | {r['min_ms']:.1f} | {r['median_ms']:.1f} | {r['max_ms']:.1f} "
              f"| {r['gmac_per_s']:.1f} | {r['of_peak']:.2f} | {ratio} |")
    if not args.skip_training:
        print(f"\n# training step (D + G, losses, optimisers, EMA), {args.train_steps} steps after 3 warm-up steps")
        print("| setting | processes | precision | pixels/s | 128^2 samples/s | pixels per CPU s "
              "| G GMAC/s (fwd+bwd = 3x fwd) |")
        print("|---|---|---|---|---|---|---|")
        train = _training_rows(args.threads, args.train_steps)
        for r in train:
            print(f"| {r['row']} | {r['processes']} | {r['precision']} | {r['pixels_per_s']:.0f} "
                  f"| {r['pixels_per_s'] / 128 ** 2:.2f} | {r['pixels_per_cpu_s']:.0f} | {r['gmac_per_s']:.1f} |")
        for r in train[1:]:
            print(f"after ({r['processes']}) / before: {r['pixels_per_s'] / train[0]['pixels_per_s']:.2f}x pixels "
                  f"per second")
    if not args.skip_memory:
        mem = _memory_row(args.threads, args.memory_size)
        print(f"\n# densegan on a {mem['size']}x{mem['size']} pair: peak RSS {mem['peak_rss_gb']:.2f} GB "
              f"(fresh process, {args.threads} threads)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
