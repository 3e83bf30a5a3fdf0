"""The published deep peers' weights: where they come from, where they are kept, and how they are loaded.

Every file is the authors' own, unchanged, from their repository at a fixed commit; ``PUBLISHED_WEIGHTS``
gives its URL and SHA-256. Nothing is shipped with the project. A method finds its file as
``weights=FILE`` (any path; not checksummed, so a fine-tuned state dict works), else in the per-user cache
``$FUSION_CACHE`` (default ``~/.cache/fusionbench``) at ``<method>/<file>``, which
``python -m bench weights fetch NAME`` fills: it downloads to a temporary file beside the target, checks
the SHA-256 and only then renames it into place, so a failed or corrupt download leaves nothing behind
(the convention of ``torch.hub.download_url_to_file``).

Loading is ``torch.load(..., weights_only=True)`` (tensors and plain containers only: a pickle that names
any other Python object is refused before anything in it runs) followed by a strict key and shape match
against the project's own module; every failure is one ``UserError`` line naming the file.
"""
from __future__ import annotations

import hashlib
import http.client
import os
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from common.errors import UserError, first_few

CACHE_ENV = "FUSION_CACHE"
DEFAULT_CACHE = Path("~/.cache/fusionbench")


@dataclass(frozen=True)
class PublishedWeights:
    """One file of an author's repository: ``url`` is the raw file at a pinned commit."""
    method: str                   # registered method that uses it (also its cache folder)
    file: str                     # file name, in the cache at <cache>/<method>/<file>
    url: str
    sha256: str

    @property
    def relative_path(self) -> Path:
        return Path(self.method) / self.file


def _github(repo: str, commit: str, path: str) -> str:
    return f"https://github.com/{repo}/raw/{commit}/{path}"


_IFCNN = ("uzeful/IFCNN", "8fe59c2b1553e52acc793986208ca479d134a8da")
PUBLISHED_WEIGHTS: dict[str, PublishedWeights] = {w.method + ":" + w.file: w for w in [
    PublishedWeights("ifcnn", "IFCNN-MAX.pth", _github(*_IFCNN, "Code/snapshots/IFCNN-MAX.pth"),
                     "6022b44c88a2f0367ba9b08fcdf0d663745d9a966fca0ee1f41867797b6ff53f"),
    PublishedWeights("ifcnn", "IFCNN-SUM.pth", _github(*_IFCNN, "Code/snapshots/IFCNN-SUM.pth"),
                     "a8c1d293f1bf16a93e6244a4bf8f7a7bd300dc10555c8597ad7ef3320b0410cb"),
    PublishedWeights("ifcnn", "IFCNN-MEAN.pth", _github(*_IFCNN, "Code/snapshots/IFCNN-MEAN.pth"),
                     "fd2ee9361f1d428fc9749e28e8a2c5c5ef6ce6528ab6f5ad8ef5def42e7ffa4b"),
    PublishedWeights("densefuse", "densefuse_gray.model",
                     _github("hli1221/densefuse-pytorch", "4394b63e9295db1c6b7a5c3664551c90f0605f2b",
                             "models/densefuse_gray.model"),
                     "b34cf3650f04161b31ac2467decfeedf7eba39165b7618f846e0f298ecd2ac65"),
    PublishedWeights("matr", "model_10.pth",
                     _github("tthinking/MATR", "b427644d4dab600a805cf2711d8a31232aaa2ca5", "models/model_10.pth"),
                     "523f6be0ef0330a84c473a7ad2e037a7eb1a98584021c4772dfd317c1c0ddaab"),
    PublishedWeights("gesenet", "GeSeNet.pth",
                     _github("lok-18/GeSeNet", "89f7fe97480ab9a115e8f7853e50853a6d4089db", "model/GeSeNet.pth"),
                     "3ecbeb6321d190a088a96adac244fcb384506cbfaf31880f08462d2aba518909"),
]}


def cache_dir() -> Path:
    """``$FUSION_CACHE``, else ``~/.cache/fusionbench``."""
    return Path(os.environ.get(CACHE_ENV) or DEFAULT_CACHE).expanduser()


def weights_for(method: str) -> list[PublishedWeights]:
    """The published files ``method`` uses (what ``weights fetch METHOD`` downloads)."""
    found = [w for w in PUBLISHED_WEIGHTS.values() if w.method == method]
    if not found:
        known = sorted({w.method for w in PUBLISHED_WEIGHTS.values()})
        raise UserError(f"no published weights for {method!r} (known: {', '.join(known)})")
    return found


def published(method: str, file: str) -> PublishedWeights:
    return PUBLISHED_WEIGHTS[f"{method}:{file}"]


def fetch_command(method: str) -> str:
    return f"python -m bench weights fetch {method}"


def missing_weights(entry: PublishedWeights, weights: str | os.PathLike | None = None) -> str | None:
    """None when ``entry`` can be loaded (``weights`` given, or the cached file present), else the one-line
    reason: what is missing, the command that fetches it and its URL."""
    if weights:
        return None
    path = cache_dir() / entry.relative_path
    if path.is_file():
        return None
    return (f"{entry.method}: weights {path} not found; run `{fetch_command(entry.method)}` (downloads "
            f"{entry.url}) or pass weights=FILE")


def weights_check(entry: PublishedWeights):
    """The registry's ``unavailable`` hook for a method with one published file: the reason its file is
    missing, or None."""
    def unavailable(weights: str | None = None, **_ignored) -> str | None:
        return missing_weights(entry, weights)
    return unavailable


def resolve_weights(entry: PublishedWeights, weights: str | os.PathLike | None = None) -> Path:
    """``weights`` when given (it must exist), else the cached copy of ``entry``; one-line error otherwise."""
    if weights:
        path = Path(weights).expanduser()
        if not path.is_file():
            raise UserError(f"{entry.method}: weights file {path} not found")
        return path.resolve()
    reason = missing_weights(entry)
    if reason:
        raise UserError(reason)
    return (cache_dir() / entry.relative_path).resolve()


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def fetch(entry: PublishedWeights, *, mirror: str | None = None, force: bool = False, timeout: float = 60.0) -> Path:
    """Download ``entry`` into the cache and check its SHA-256; returns the cached path.

    ``mirror`` replaces the authors' URL by ``<mirror>/<method>/<file>`` (an offline copy laid out like the
    cache); the checksum is the same. An existing cached file is re-checked, not re-downloaded, unless
    ``force``. The download goes to a temporary file in the target folder and is renamed into place only
    after the checksum matched: an interrupted or corrupt download leaves no file behind.
    """
    target = cache_dir() / entry.relative_path
    if target.is_file() and not force:
        actual = sha256_of(target)
        if actual != entry.sha256:
            raise UserError(f"{target}: SHA-256 {actual[:12]}... does not match the published "
                            f"{entry.sha256[:12]}...; delete it or run with --force to download it again")
        return target
    url = f"{mirror.rstrip('/')}/{entry.relative_path.as_posix()}" if mirror else entry.url
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=target.parent)
    try:
        digest, size = hashlib.sha256(), 0
        with os.fdopen(fd, "wb") as fh:
            try:
                with urllib.request.urlopen(url, timeout=timeout) as response:
                    expected = response.headers.get("Content-Length")
                    while block := response.read(1 << 16):
                        fh.write(block)
                        digest.update(block)
                        size += len(block)
            except (urllib.error.URLError, http.client.HTTPException, OSError, ValueError) as exc:
                raise UserError(f"{entry.method}: download of {url} failed after {size} bytes ({_reason(exc)}); "
                                f"nothing was written to {target}") from None
            fh.flush()
            os.fsync(fh.fileno())
        if expected is not None and int(expected) != size:
            raise UserError(f"{entry.method}: download of {url} stopped at {size} of {expected} bytes; "
                            f"nothing was written to {target}")
        if digest.hexdigest() != entry.sha256:
            raise UserError(f"{entry.method}: {url} has SHA-256 {digest.hexdigest()[:12]}..., not the published "
                            f"{entry.sha256[:12]}...; nothing was written to {target}")
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target


def _reason(exc: BaseException) -> str:
    if isinstance(exc, urllib.error.HTTPError):
        return f"HTTP {exc.code} {exc.reason}"
    reason = getattr(exc, "reason", None) or exc
    return f"{type(exc).__name__}: {reason}".splitlines()[0]


def load_state_dict(model, path: str | os.PathLike, what: str):
    """Load the state dict in ``path`` into ``model`` (a ``torch.nn.Module``) with strict key and shape
    matching; returns ``model``. ``what`` names the architecture in messages (``"IFCNN"``).

    Only ``torch.load(weights_only=True)`` is used: a pickle that references code (``os.system``, any class)
    is refused before it runs. A truncated or non-PyTorch file, a checkpoint that is not a flat mapping of
    tensors, and a state dict of another architecture each give one ``UserError`` line.
    """
    import pickle

    import torch

    path = Path(path)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        detail = str(exc)
        if "Unsupported global" in detail or "Weights only load failed" in detail:
            names = [line.split("GLOBAL", 1)[1].split()[0] for line in detail.splitlines() if "GLOBAL" in line]
            shown = f" ({names[0]})" if names else ""
            raise UserError(f"{path}: refused: the pickle references Python objects{shown}, not only tensors; "
                            f"only plain state dicts are loaded (torch.load weights_only=True)") from None
        raise UserError(f"{path}: not a readable PyTorch state dict ({detail.splitlines()[0]})") from None
    except (RuntimeError, EOFError, ValueError, OSError) as exc:
        first = (str(exc).splitlines() or [type(exc).__name__])[0]
        raise UserError(f"{path}: not a readable PyTorch state dict, truncated or corrupt ({first})") from None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise UserError(f"{path}: expected a state dict (a mapping of names to tensors), got {type(state).__name__}")
    expected = model.state_dict()
    # batch norm's step counter (PyTorch >= 0.4.1) is absent from older snapshots (IFCNN's) and unused in eval
    state = {**{k: v for k, v in expected.items() if k.endswith(".num_batches_tracked")}, **state}
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    if missing or unexpected:
        raise UserError(f"{path}: not a state dict of {what}: missing {first_few(missing, 3) or 'none'}; "
                        f"unexpected {first_few(unexpected, 3) or 'none'}")
    for key, tensor in expected.items():
        if state[key].shape != tensor.shape:
            raise UserError(f"{path}: not a state dict of {what}: {key} has shape {tuple(state[key].shape)}, "
                            f"expected {tuple(tensor.shape)}")
    model.load_state_dict(state, strict=True)
    return model


def load_network(architecture, args: tuple, entry: PublishedWeights, weights: str | os.PathLike | None = None,
                 device: str = "cpu", what: str | None = None):
    """``architecture(*args)`` in eval mode with the weights of ``entry`` (or the file ``weights``) on
    ``device``; built and loaded once per (file version, arguments, device)."""
    path = resolve_weights(entry, weights)
    return _load_network(architecture, tuple(args), str(path), path.stat().st_mtime_ns, device,
                         what or architecture.__name__)


@lru_cache(maxsize=16)
def _load_network(architecture, args: tuple, path: str, mtime_ns: int, device: str, what: str):
    return load_state_dict(architecture(*args), path, what).eval().to(device)


def network_complexity(model, *inputs) -> dict:
    """``{"parameters", "macs"}`` of one forward pass of ``model`` on ``inputs``, counted as the dense-block
    GAN's rows are (``methods.densegan.model.count_macs``: every Conv2d and Linear), so the algorithm table
    compares like with like."""
    from methods.densegan.model import count_macs, count_parameters

    return {"parameters": count_parameters(model), "macs": count_macs(model, *inputs)}


def network_attributes(package: str):
    """A module ``__getattr__`` for a method package: names the package does not define (the network's
    classes, its builder) come from ``<package>.network`` on first use, so registering the method imports
    no torch."""
    import importlib

    def __getattr__(attr: str):
        if attr.startswith("__") or attr == "network":
            raise AttributeError(attr)
        return getattr(importlib.import_module(f"{package}.network"), attr)
    return __getattr__

