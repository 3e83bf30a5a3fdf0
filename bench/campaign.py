"""Training campaigns: a list of (configuration, seed) runs, trained to completion across interruptions.

    python -m bench campaign methods/configs/campaign-harvard.yaml [--jobs 2] [--only densegan-s0,...]
    python -m bench campaign FILE --status          # the table only, trains nothing
    python -m bench campaign FILE --report          # <out>/index.html: table and validation curves, trains nothing
    python -m bench campaign FILE --out DIR         # another output folder than the file's `out`

A campaign file names an output folder, a profile and the runs::

    out: campaigns/harvard             # relative to the working directory
    profile: long
    runs:                              # in the order they are started
      - {method: densegan, seeds: [0]}
      - {method: densegan-nodense, seeds: [0, 1, 2], set: [loss.lambda_adv=0.5]}
      - {name: densegan-intmax, method: densegan, set: [loss.intensity_target=max]}   # a recipe variant

Each (method, seed) -- named ``<name or method>-s<seed>`` -- trains with ``python -m bench train --method M --profile P --out <out>/<M>-s<seed>
--set train.seed=<seed> ...`` in its own process (one torch thread, ``OMP_NUM_THREADS=1``; ``--nice``
lowers its priority), logging to ``<out>/logs/<M>-s<seed>.log``. A finished run (every epoch checkpointed and its
final generator written) is skipped, a started one resumes from its last complete epoch, so rerunning the
same command after a kill loses at most one epoch per run. ``--jobs N`` trains N runs at once. A child
process is ended when the campaign ends, by a signal or a crash (Linux: ``PR_SET_PDEATHSIG``).

``--ship`` copies, for every registered configuration with finished runs, the ``best.safetensors`` of the
seed with the best validation score into ``methods/weights/<method>.safetensors`` (the shipped weights the
registered methods load), with the run's name and seed added to its metadata; it replaces a shipped file
only with ``--replace``. Test splits play no part in the choice.

``<out>/campaign.csv`` and ``campaign.md`` hold the campaign table (status, epochs, samples seen, wall and
CPU time, the best validation epoch and its scores); ``<out>/progress.txt`` is rewritten every few seconds
while it runs, with each active run's epoch and an ETA from its mean epoch time.
"""
from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from common.errors import UserError
from common.io import read_csv_rows, write_csv_rows, write_text

RUN_KEYS = {"method", "name", "seeds", "set", "profile", "config"}
TABLE_FIELDS = ("run", "method", "seed", "status", "epochs_done", "epochs", "steps", "samples", "wall_s", "cpu_s",
                "best_epoch", "val_score", "Qabf", "VIF", "SSIM", "MI")


@dataclass
class CampaignRun:
    name: str
    method: str
    seed: int
    profile: str
    config: str | None
    overrides: list[str]
    out: Path
    epochs: int = 0
    process: subprocess.Popen | None = field(default=None, repr=False)

    @property
    def log(self) -> Path:
        """The run's console log, beside (not in) its run folder, which ``bench train`` keeps for itself."""
        return self.out.parent / "logs" / f"{self.name}.log"

    def command(self, resume: bool) -> list[str]:
        cmd = [sys.executable, "-m", "bench", "train", "--method", self.method, "--out", str(self.out),
               "--profile", self.profile]
        if self.config:
            cmd += ["--config", self.config]
        for assignment in [f"train.seed={self.seed}", *self.overrides]:
            cmd += ["--set", assignment]
        return cmd + (["--resume"] if resume else [])


def read_campaign(path: str | Path, out: str | Path | None = None) -> tuple[Path, list[CampaignRun]]:
    """The campaign's output folder (``out`` overrides the file's) and its runs, in file order."""
    path = Path(path)
    try:
        spec = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise UserError(f"campaign file {path} not found") from None
    except yaml.YAMLError as exc:
        raise UserError(f"{path}: not valid YAML ({str(exc).splitlines()[0]})") from None
    if not isinstance(spec, dict) or not isinstance(spec.get("runs"), list) or not spec.get("out"):
        raise UserError(f"{path}: a campaign file needs `out:` and a list `runs:`")
    out = Path(out or spec["out"])
    runs, names = [], set()
    for i, entry in enumerate(spec["runs"], 1):
        if not isinstance(entry, dict) or "method" not in entry:
            raise UserError(f"{path}: run {i} needs a `method`")
        unknown = set(entry) - RUN_KEYS
        if unknown:
            raise UserError(f"{path}: run {i} has unknown key(s) {', '.join(sorted(unknown))} "
                            f"(known: {', '.join(sorted(RUN_KEYS))})")
        for seed in entry.get("seeds", [0]):
            if not isinstance(seed, int):
                raise UserError(f"{path}: run {i}: seeds must be integers, got {seed!r}")
            name = f"{entry.get('name') or entry['method']}-s{seed}"
            if name in names:
                raise UserError(f"{path}: run {name} is listed twice")
            names.add(name)
            profile = entry.get("profile", spec.get("profile")) or "cpu"      # `bench train`'s default
            runs.append(CampaignRun(name, entry["method"], seed, profile,
                                    entry.get("config"), [str(s) for s in entry.get("set") or []], out / name))
    return out, runs


def _resolved_config(run: CampaignRun) -> dict:
    from bench.training import resolved_config, trainer_module

    entry = {"method": run.method, "profile": run.profile, "config": run.config,
             "set": [f"train.seed={run.seed}", *run.overrides]}
    return resolved_config(entry, trainer_module(run.method))


def write_report(out: Path, runs: list[CampaignRun]) -> Path:
    """``<out>/index.html``: the campaign table and every run's validation curve against the baselines."""
    from bench.campaign_report import write_campaign_report
    from bench.training import registry_datasets

    return write_campaign_report(out, write_table(out, runs), TABLE_FIELDS, _resolved_config(runs[0])["data"],
                                 registry_datasets)


def run_status(run: CampaignRun) -> dict:
    """One row of the campaign table, read from the run folder's logs."""
    from bench.training import trainer_module

    done = trainer_module(run.method).completed_epochs(run.out) if run.out.is_dir() else []
    epoch_rows = read_csv_rows(run.out / "log_epochs.csv")
    logged = [int(r["epoch"]) for r in epoch_rows]
    # The final generator is written after the last epoch's checkpoint, so with it and the last epoch logged a
    # run is finished even where its checkpoints are gone (a campaign folder kept in git keeps no checkpoint of
    # a finished run: they are resume state only).
    finished = (run.out / "generator.safetensors").is_file() and bool(logged) and max(logged) >= run.epochs
    if finished and not done:
        done = [max(logged)]
    epochs_log = [r for r in epoch_rows if done and int(r["epoch"]) <= done[-1]]
    val_log = [r for r in read_csv_rows(run.out / "log_val.csv") if done and int(r["epoch"]) <= done[-1]]
    active = run.process is not None and run.process.poll() is None
    status = ("finished" if finished else "training" if active else "stopped" if done else "waiting")
    row = {"run": run.name, "method": run.method, "seed": run.seed, "status": status,
           "epochs_done": done[-1] if done else 0, "epochs": run.epochs}
    if epochs_log:
        last = epochs_log[-1]
        row.update(steps=last.get("step", ""), samples=last.get("samples", ""),
                   wall_s=round(sum(float(r.get("seconds") or 0) for r in epochs_log), 1),
                   cpu_s=last.get("cpu_seconds", ""))
    if val_log:
        best = max(val_log, key=lambda r: float(r["val_score"]))
        row.update(best_epoch=best["epoch"], **{k: best.get(k, "") for k in ("val_score", "Qabf", "VIF", "SSIM", "MI")})
    return row


def write_table(out: Path, runs: list[CampaignRun]) -> list[dict]:
    rows = [run_status(r) for r in runs]
    out.mkdir(parents=True, exist_ok=True)
    lines = ["| " + " | ".join(TABLE_FIELDS) + " |", "|" + "---|" * len(TABLE_FIELDS)]
    lines += ["| " + " | ".join(str(r.get(k, "")) for k in TABLE_FIELDS) + " |" for r in rows]
    write_text(out / "campaign.md", "\n".join(lines) + "\n", overwrite=True)
    write_csv_rows(out / "campaign.csv", rows, TABLE_FIELDS)
    return rows


def _progress_line(run: CampaignRun) -> str:
    rows = read_csv_rows(run.out / "log_epochs.csv")
    done = len(rows)
    if not rows:
        return f"{run.name}: starting (epoch 1/{run.epochs})"
    per_epoch = sum(float(r["seconds"]) for r in rows) / done
    eta = per_epoch * max(0, run.epochs - done)
    return (f"{run.name}: epoch {done}/{run.epochs} done, {per_epoch:.0f} s/epoch, "
            f"ETA {eta / 3600:.1f} h (at {time.strftime('%H:%M', time.localtime(time.time() + eta))})")


def _end_with_parent() -> None:
    """In the child before exec: receive SIGTERM when the campaign process dies (Linux prctl)."""
    try:
        ctypes.CDLL(None).prctl(1, signal.SIGTERM)       # PR_SET_PDEATHSIG = 1
    except (OSError, AttributeError):
        pass


def run_campaign(path: str | Path, jobs: int = 1, only: list[str] | None = None, status_only: bool = False,
                 nice: int = 0, poll_seconds: float = 5.0, out: str | Path | None = None,
                 report: bool = False) -> list[dict]:
    """Train every unfinished run of the campaign file (``jobs`` at a time); returns the campaign table."""
    out, every_run = read_campaign(path, out)
    runs = every_run
    if only:
        unknown = sorted(set(only) - {r.name for r in runs})
        if unknown:
            raise UserError(f"{path}: no run named {', '.join(unknown)} (runs: {', '.join(r.name for r in runs)})")
        runs = [r for r in runs if r.name in only]      # trained now; the table keeps listing every run
    for run in every_run:
        run.epochs = int(_resolved_config(run)["train"]["epochs"])
    if report:
        print(f"wrote {write_report(out, every_run)}")
    if status_only or report:
        return write_table(out, every_run)
    if jobs < 1:
        raise UserError(f"--jobs must be at least 1, got {jobs}")
    pending = [r for r in runs if run_status(r)["status"] != "finished"]
    active: list[CampaignRun] = []
    failed: list[str] = []
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}

    def stop_children(*_):
        for r in active:
            if r.process.poll() is None:
                r.process.terminate()
        for r in active:
            try:
                r.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                r.process.kill()
        raise SystemExit(130)

    previous = {s: signal.signal(s, stop_children) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        while pending or active:
            while pending and len(active) < jobs:
                run = pending.pop(0)
                resume = run_status(run)["epochs_done"] > 0
                (out / "logs").mkdir(parents=True, exist_ok=True)
                log = open(run.log, "a")
                log.write(f"# {time.strftime('%Y-%m-%d %H:%M:%S')} {' '.join(run.command(resume))}\n")
                log.flush()
                run.process = subprocess.Popen(
                    run.command(resume), stdout=log, stderr=subprocess.STDOUT, env=env, cwd=os.getcwd(),
                    preexec_fn=lambda: (_end_with_parent(), os.nice(nice) if nice else None))
                log.close()
                active.append(run)
            time.sleep(poll_seconds)
            for run in [r for r in active if r.process.poll() is not None]:
                active.remove(run)
                if run.process.returncode != 0:
                    failed.append(f"{run.name} (exit {run.process.returncode}, see {run.log})")
            write_text(out / "progress.txt", time.strftime("%Y-%m-%d %H:%M:%S\n")
                       + "".join(_progress_line(r) + "\n" for r in active)
                       + (f"waiting: {', '.join(r.name for r in pending)}\n" if pending else "")
                       + (f"failed: {'; '.join(failed)}\n" if failed else ""), overwrite=True)
            write_table(out, every_run)
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
    rows = write_table(out, every_run)
    if failed:
        raise UserError(f"campaign {path}: {len(failed)} run(s) failed: {'; '.join(failed)}")
    return rows


# ----------------------------------------------------------------------------------------- shipping

def finished_best_weights(out: str | Path) -> dict[str, dict[int, Path]]:
    """{configuration: {seed: best.safetensors}} of the finished runs in a campaign folder.

    A run counts when it is named ``<method>-s<seed>`` with a registered method (named recipe variants such
    as ``densegan-intmax-s0`` are validation checks, not configurations) and its final generator is written
    (training ended); its ``best.safetensors`` is the epoch with the best validation score.
    """
    import methods

    found: dict[str, dict[int, Path]] = {}
    for best in sorted(Path(out).glob("*-s*/best.safetensors")):
        method, _, seed = best.parent.name.rpartition("-s")
        if seed.isdigit() and method in methods.METHODS and (best.parent / "generator.safetensors").is_file():
            found.setdefault(method, {})[int(seed)] = best
    return found


def validation_score(weights: Path) -> float:
    """The validation score stored in a ``best.safetensors`` (NaN when it has none)."""
    from safetensors import safe_open

    with safe_open(weights, "pt") as f:
        return float(f.metadata().get("val_score", "nan"))


def best_seed(runs: dict[int, Path]) -> int:
    """The seed whose best validation score is highest."""
    return max(runs, key=lambda seed: validation_score(runs[seed]))


def ship_weights(out: str | Path, weights_dir: str | Path, *, replace: bool = False) -> list[dict]:
    """Copy each configuration's validation-best seed into ``weights_dir/<method>.safetensors``; returns one
    row per configuration (method, seed, run, epoch, val_score, path, unchanged). Refuses to replace an
    existing file unless ``replace`` (checked for every file before any is written); a file whose tensors
    and metadata would stay the same is left as it is."""
    from safetensors import safe_open
    from safetensors.torch import save_file

    def same_file(path: Path, tensors: dict, meta: dict) -> bool:
        # safetensors writes metadata in hash order, so equal content need not mean equal bytes: compare content
        if not path.is_file():
            return False
        with safe_open(path, "pt") as f:
            return (dict(f.metadata() or {}) == meta and set(f.keys()) == set(tensors)
                    and all(f.get_tensor(k).equal(v) for k, v in tensors.items()))

    found = finished_best_weights(out)
    if not found:
        raise UserError(f"{out}: no finished run to ship (a run is finished when its generator.safetensors "
                        f"is written)")
    weights_dir = Path(weights_dir)
    chosen = {method: best_seed(runs) for method, runs in found.items()}
    existing = [str(weights_dir / f"{m}.safetensors") for m in chosen if (weights_dir / f"{m}.safetensors").exists()]
    if existing and not replace:
        raise UserError(f"would replace {', '.join(existing)}; pass --replace to ship over the current weights")
    rows = []
    for method, seed in sorted(chosen.items()):
        source = found[method][seed]
        with safe_open(source, "pt") as f:
            meta = dict(f.metadata())
            tensors = {k: f.get_tensor(k) for k in f.keys()}
        meta.update(campaign_run=source.parent.name, seed=str(seed), seeds_finished=str(len(found[method])))
        target = weights_dir / f"{method}.safetensors"
        unchanged = same_file(target, tensors, meta)
        if not unchanged:       # an unchanged file keeps its bytes (no binary churn in git)
            tmp = target.with_name(target.name + ".tmp")
            save_file(tensors, str(tmp), metadata=meta)
            os.replace(tmp, target)
        rows.append({"method": method, "seed": seed, "run": source.parent.name, "epoch": meta.get("epoch", ""),
                     "val_score": meta.get("val_score", ""), "path": str(target), "unchanged": unchanged})
    return rows
