"""Weights and training state on disk: safetensors only for weights, atomic writes.

* Weights (``*.safetensors``): flat tensors with ``generator.`` / ``discriminator.`` prefixes (training
  checkpoints) or the generator alone (shipped files), plus string metadata: ``generator_config`` (JSON of
  ``GeneratorConfig``) so a file rebuilds its own network. Written atomically (``common.io.write_bytes``).
* Training state (``*.state.pt``): epoch, step, RNG states and optimizer states, written with
  ``torch.save`` and read with ``torch.load(weights_only=True)`` (plain tensors and containers only).
A weights file that is not safetensors (a pickled ``.pt``/``.pth``, which can run code when loaded) is
refused with a ``UserError``.
"""
from __future__ import annotations

import json
import io
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file
from safetensors.torch import save as save_bytes

from common.errors import UserError
from common.io import write_bytes
from methods.densegan.model import Generator, GeneratorConfig


def save_weights(tensors: dict[str, torch.Tensor], path: Path, metadata: dict[str, str] | None = None) -> Path:
    tensors = {k: v.detach().cpu().contiguous() for k, v in tensors.items()}
    return write_bytes(path, save_bytes(tensors, metadata=metadata))   # the project's one atomic writer


def _check_safetensors(path: Path) -> None:
    """One ``UserError`` line unless ``path`` is a whole safetensors file.

    The format: an 8-byte little-endian header size ``n``, a JSON header of ``n`` bytes mapping each tensor
    to its ``data_offsets`` (plus ``__metadata__``), then the data. A file that does not start like that
    (a pickled ``.pt``/``.pth``) is refused as not safetensors; one that does but ends early is reported
    as truncated (an interrupted copy or download), not as pickled.
    """
    size = path.stat().st_size
    with open(path, "rb") as fh:
        head = fh.read(9)
        if len(head) < 9 or head[8:9] != b"{":
            raise UserError(f"{path}: not a safetensors file; pickled weights (.pt/.pth) are refused because "
                            f"loading them can run code -- convert with safetensors.torch.save_file(state_dict, ...)")
        n = int.from_bytes(head[:8], "little")
        if 8 + n > size:
            raise UserError(f"{path}: truncated safetensors file (its header alone needs {8 + n} bytes, the file "
                            f"has {size}); copy or download it again")
        fh.seek(8)
        try:
            header = json.loads(fh.read(n))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise UserError(f"{path}: safetensors header is not valid JSON ({exc})") from None
    if not isinstance(header, dict):
        raise UserError(f"{path}: safetensors header is not a JSON object")
    ends = [entry["data_offsets"][1] for name, entry in header.items()
            if name != "__metadata__" and isinstance(entry, dict) and len(entry.get("data_offsets") or ()) == 2]
    needed = 8 + n + max(ends, default=0)
    if needed > size:
        raise UserError(f"{path}: truncated safetensors file ({size} of {needed} bytes); copy or download it again")


def load_weights(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """(tensors, metadata) of a safetensors file; anything else is refused."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"weights file {path} not found")
    if path.suffix != ".safetensors":
        raise UserError(f"{path}: not a safetensors file; pickled weights (.pt/.pth) are refused because "
                        f"loading them can run code -- convert with safetensors.torch.save_file(state_dict, ...)")
    _check_safetensors(path)
    try:
        with safe_open(str(path), framework="pt") as fh:
            metadata = dict(fh.metadata() or {})
        return load_file(str(path)), metadata
    except (SafetensorError, OSError, ValueError) as exc:
        raise UserError(f"{path}: unreadable safetensors file ({exc})") from None


def prefixed(module: torch.nn.Module, prefix: str) -> dict[str, torch.Tensor]:
    return {f"{prefix}.{k}": v for k, v in module.state_dict().items()}


def unprefixed(tensors: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    return {k[len(prefix) + 1:]: v for k, v in tensors.items() if k.startswith(prefix + ".")}


def save_generator(generator: Generator, path: Path, extra_metadata: dict[str, str] | None = None) -> Path:
    """Shipped form: the generator alone, its config in the metadata."""
    meta = {"generator_config": json.dumps(generator.config.to_dict()), **(extra_metadata or {})}
    return save_weights(generator.state_dict(), path, meta)


def load_generator(path: Path, fusion_rule: str | None = None, device: str = "cpu") -> Generator:
    """Rebuild a generator from a shipped or checkpoint safetensors file (eval mode)."""
    tensors, meta = load_weights(path)
    if "generator_config" not in meta:
        raise UserError(f"{path}: no generator_config in the safetensors metadata (not a densegan weights file)")
    try:
        config = GeneratorConfig.from_dict(json.loads(meta["generator_config"]))
    except json.JSONDecodeError as exc:
        raise UserError(f"{path}: generator_config in the safetensors metadata is not valid JSON ({exc})") from None
    except (TypeError, ValueError, AttributeError, KeyError) as exc:
        raise UserError(f"{path}: generator_config in the safetensors metadata does not describe a generator "
                        f"({exc})") from None
    generator = Generator(config)
    state = unprefixed(tensors, "generator") or tensors
    try:
        generator.load_state_dict(state)
    except RuntimeError as exc:
        raise UserError(f"{path}: weights do not fit the generator in its metadata ({str(exc).splitlines()[0]})") from None
    if fusion_rule:
        generator.set_fusion_rule(fusion_rule)
    return generator.to(device).eval()


def save_state(state: dict, path: Path) -> Path:
    buffer = io.BytesIO()
    torch.save(state, buffer)
    return write_bytes(path, buffer.getvalue())


def load_state(path: Path) -> dict:
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise UserError(f"training state {path} not found") from None
    except Exception as exc:      # torch raises UnpicklingError / RuntimeError for foreign content
        raise UserError(f"{path}: not a loadable training state ({str(exc).splitlines()[0]})") from None
