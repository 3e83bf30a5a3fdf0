"""Method configurations of a suite: plain names, parameter grids and epoch sweeps.

In ``datasets.yaml`` a suite's ``methods`` list takes

    - dwt                                          # the method with its defaults
    - {method: dwt, params: {wavelet: db2}}        # fixed parameters
    - {method: dwt, grid: {level: [2, 3, 4]}}      # one configuration per grid point (Cartesian product)
    - {method: densegan, epochs: [1, 5, 10],       # one configuration per checkpoint of a training run
       weights: "runs/densegan-cpu/checkpoints/epoch_{epoch:04d}.safetensors"}

Each configuration has a label (``dwt``, ``dwt[level=2]``, ``densegan@5``) that names it in every table
and figure.
"""
from __future__ import annotations

import itertools
import json
from dataclasses import dataclass

from common.errors import UserError


@dataclass(frozen=True)
class Config:
    method: str
    params: tuple = ()            # sorted (name, value) pairs
    epoch: int | None = None
    swept: tuple = ()             # names of the parameters a grid varies (shown in the label)
    name: str | None = None       # a fixed name instead (a campaign run: ``densegan-nodense-s1``)

    @property
    def label(self) -> str:
        if self.name is not None:
            return self.name + (f"@{self.epoch}" if self.epoch is not None else "")
        shown = [f"{k}={v}" for k, v in self.params if k in self.swept]
        text = self.method + (f"[{','.join(shown)}]" if shown else "")
        return text + (f"@{self.epoch}" if self.epoch is not None else "")

    @property
    def kwargs(self) -> dict:
        return dict(self.params)

    @property
    def params_json(self) -> str:
        return json.dumps(dict(self.params), sort_keys=True, default=str)


def expand_methods(entries) -> list[Config]:
    """Every configuration that a suite's ``methods`` list describes, in order."""
    configs: list[Config] = []
    for entry in entries:
        if isinstance(entry, str):
            configs.append(Config(entry))
            continue
        if not isinstance(entry, dict) or "method" not in entry:
            raise UserError(f"suite method entry {entry!r}: expected a name or a mapping with 'method'")
        unknown = set(entry) - {"method", "params", "grid", "epochs", "weights"}
        if unknown:
            raise UserError(f"suite method entry for {entry['method']!r}: unknown keys {sorted(unknown)}")
        fixed = dict(entry.get("params") or {})
        grid = entry.get("grid") or {}
        names = sorted(grid)
        epochs = entry.get("epochs")
        if epochs is not None and "weights" not in entry:
            raise UserError(f"suite entry for {entry['method']!r} sweeps epochs but gives no 'weights' pattern")
        for values in itertools.product(*(grid[n] if isinstance(grid[n], list) else [grid[n]] for n in names)):
            params = {**fixed, **dict(zip(names, values))}
            for epoch in (epochs if epochs is not None else [None]):
                p = dict(params)
                if epoch is not None:
                    p["weights"] = entry["weights"].format(epoch=epoch)
                configs.append(Config(entry["method"], tuple(sorted(p.items())), epoch, tuple(names)))
    labels = [c.label for c in configs]
    dupes = sorted({x for x in labels if labels.count(x) > 1})
    if dupes:
        raise UserError(f"suite lists the same method configuration twice: {', '.join(dupes)}")
    return configs
