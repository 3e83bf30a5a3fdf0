"""Image and file I/O: images become float32 arrays in [0, 1]; every write is atomic.

Conventions
-----------
* Grey images are ``(H, W)``; colour images are ``(H, W, 3)`` RGB. An alpha channel is dropped
  only when it is fully opaque (a transparent pixel has no defined intensity).
* 8-bit files are divided by 255, 16-bit files by 65535; other integer depths (32-bit TIFF) are refused,
  float TIFFs are taken as they are (and must lie in [0, 1]).
* Writing quantises with ``floor(255 x + 0.5)`` after clipping to [0, 1] (MATLAB's ``uint8``
  rounding, which the reference baselines use), never with numpy's round-half-to-even.
"""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import numpy as np

from common.errors import UserError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp")


def read_image(path: str | os.PathLike) -> np.ndarray:
    """Read a PNG/JPEG/TIFF/BMP file (8- or 16-bit, grey or RGB) as float32 in [0, 1]."""
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: no such image file")
    try:
        with Image.open(path) as im:
            im.load()
            arr = _pil_to_float(im, path)
    except UnidentifiedImageError:
        raise UserError(f"{path}: not a readable image (PNG, JPEG, TIFF or BMP expected)") from None
    except OSError as exc:
        raise UserError(f"{path}: cannot read image ({exc})") from None
    check_image(arr, str(path))
    return arr


def _pil_to_float(im, path: Path) -> np.ndarray:
    mode = im.mode
    if mode == "P":
        im = im.convert("RGBA" if "transparency" in im.info else "RGB")
        mode = im.mode
    if mode in ("1", "L"):
        return np.asarray(im.convert("L"), dtype=np.float32) / 255.0
    if mode in ("I;16", "I;16B", "I;16L", "I;16N"):
        return np.asarray(im, dtype=np.float32) / 65535.0
    if mode == "I":
        # 32-bit integer samples; a PNG (no 32-bit samples) opened as "I" by an older Pillow is 16-bit.
        # No other scale is guessed: dividing by 255 or 65535 after the maximum changed an image's values
        # with its content.
        if im.format == "PNG":
            return (np.asarray(im, dtype=np.float64) / 65535.0).astype(np.float32)
        raise UserError(f"{path}: 32-bit integer image; save it as 8- or 16-bit (or as float in [0, 1])")
    if mode == "F":
        return np.asarray(im, dtype=np.float32)
    if mode in ("LA", "RGBA"):
        arr = np.asarray(im)
        if arr[..., -1].min() < 255:
            raise UserError(f"{path}: has a transparent alpha channel; save it without transparency")
        arr = arr[..., :-1]
        return (arr[..., 0] if mode == "LA" else arr).astype(np.float32) / 255.0
    if mode in ("RGB", "YCbCr", "CMYK"):
        return np.asarray(im.convert("RGB"), dtype=np.float32) / 255.0
    raise UserError(f"{path}: unsupported image mode {mode!r} (grey or RGB, 8- or 16-bit expected)")


def check_image(img: np.ndarray, where: str) -> np.ndarray:
    """Raise a one-line ``UserError`` unless ``img`` is a finite (H, W) or (H, W, 3) image in [0, 1]."""
    img = np.asarray(img)
    if img.ndim == 3 and img.shape[2] == 1:
        img = img[..., 0]
    if not (img.ndim == 2 or (img.ndim == 3 and img.shape[2] == 3)):
        raise UserError(f"{where}: expected a grey (H, W) or RGB (H, W, 3) image, got shape {img.shape}")
    if img.size == 0:
        raise UserError(f"{where}: empty image")
    if not np.issubdtype(img.dtype, np.floating):
        raise UserError(f"{where}: expected a float image in [0, 1], got dtype {img.dtype}")
    if not np.isfinite(img).all():
        raise UserError(f"{where}: contains NaN or infinite values")
    lo, hi = float(img.min()), float(img.max())
    if lo < -1e-6 or hi > 1 + 1e-6:
        raise UserError(f"{where}: values outside [0, 1] (min {lo:.4g}, max {hi:.4g})")
    return img


def to_uint8(img: np.ndarray) -> np.ndarray:
    """Quantise a [0, 1] image to uint8 with MATLAB ``uint8`` rounding (half away from zero)."""
    return np.floor(np.clip(np.asarray(img, dtype=np.float64), 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def write_image(path: str | os.PathLike, img: np.ndarray, *, overwrite: bool = False) -> Path:
    """Write a [0, 1] image as an 8-bit PNG/TIFF/BMP/JPEG, atomically.

    Raises ``UserError`` if ``path`` exists and ``overwrite`` is false.
    """
    from PIL import Image

    path = Path(path)
    if path.suffix.lower() not in IMAGE_SUFFIXES:
        raise UserError(f"{path}: unknown image extension (use one of {', '.join(IMAGE_SUFFIXES)})")
    check_image(np.asarray(img, dtype=np.float32), f"image for {path}")
    im = Image.fromarray(to_uint8(img))
    fmt = {".jpg": "JPEG", ".jpeg": "JPEG", ".tif": "TIFF", ".tiff": "TIFF"}.get(path.suffix.lower(), path.suffix[1:].upper())
    return _atomic_write(path, lambda fh: im.save(fh, format=fmt), overwrite=overwrite)


def write_text(path: str | os.PathLike, text: str, *, overwrite: bool = True) -> Path:
    """Write text atomically (a reader never sees half a file)."""
    return _atomic_write(Path(path), lambda fh: fh.write(text.encode("utf-8")), overwrite=overwrite)


def write_json(path: str | os.PathLike, obj, *, overwrite: bool = True) -> Path:
    return write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n", overwrite=overwrite)


def read_csv_rows(path: str | os.PathLike) -> list[dict]:
    """The rows of a CSV file with a header, as dicts of strings; ``[]`` when the file does not exist."""
    import csv

    path = Path(path)
    if not path.is_file():
        return []
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def write_csv_rows(path: str | os.PathLike, rows: list[dict], fields, *, overwrite: bool = True) -> Path:
    """Write ``rows`` under the header ``fields`` (keys outside it ignored, missing ones empty), atomically."""
    import csv
    import io

    buffer = io.StringIO(newline="")
    writer = csv.DictWriter(buffer, fieldnames=list(fields), extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    return write_text(path, buffer.getvalue(), overwrite=overwrite)


def write_bytes(path: str | os.PathLike, data: bytes, *, overwrite: bool = True) -> Path:
    return _atomic_write(Path(path), lambda fh: fh.write(data), overwrite=overwrite)


def check_writable(path: str | os.PathLike, *, overwrite: bool = False) -> Path:
    """Raise a one-line ``UserError`` unless a file may be written at ``path``: not a folder, not an existing
    file unless ``overwrite``. Commands call it before any work, writers again just before writing."""
    path = Path(path)
    if path.is_dir():
        raise UserError(f"{path}: is a folder; give a file name")
    if path.exists() and not overwrite:
        raise UserError(f"{path}: already exists (use --force to overwrite)")
    if path.parent.exists() and not path.parent.is_dir():
        raise UserError(f"{path.parent}: is a file, not a folder")
    return path


def _atomic_write(path: Path, write, *, overwrite: bool) -> Path:
    check_writable(path, overwrite=overwrite)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        # mkstemp creates the file 0600; give it the permissions a plain open() would
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def images_by_stem(folder: Path) -> dict[str, Path]:
    """``list_images(folder)`` keyed by file name stem; two files with one stem (``p0.png`` and ``p0.tif``)
    are a ``UserError`` naming both, since either could be the one meant."""
    by_stem: dict[str, Path] = {}
    for path in list_images(folder):
        if path.stem in by_stem:
            raise UserError(f"{folder}: {by_stem[path.stem].name} and {path.name} have the same name stem; "
                            f"keep one of them")
        by_stem[path.stem] = path
    return by_stem


def list_images(folder: Path) -> list[Path]:
    """Image files directly inside ``folder``, sorted by name (hidden files skipped)."""
    return sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith(".")
                  and p.suffix.lower() in IMAGE_SUFFIXES)


def read_npz(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """The arrays of an ``.npz`` file, numbers only; anything else is one ``UserError`` naming the file.

    ``allow_pickle`` stays off: an object array (pickled Python objects, which can run code when
    loaded) is refused, as is a file that is not a NumPy archive or is truncated.
    """
    import zipfile

    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as data:
            if not hasattr(data, "files"):
                raise UserError(f"{path}: a single .npy array, not an .npz archive of named arrays")
            return {name: data[name] for name in data.files}
    except FileNotFoundError:
        raise UserError(f"{path}: no such file") from None
    except ValueError as exc:
        if "allow_pickle" in str(exc):
            raise UserError(f"{path}: holds an object array (pickled Python objects, refused because loading "
                            f"them can run code); save plain numeric arrays") from None
        raise UserError(f"{path}: not a readable .npz file ({exc})") from None
    except (OSError, EOFError, zipfile.BadZipFile) as exc:
        raise UserError(f"{path}: not a readable .npz file ({exc})") from None


def read_yaml_mapping(path: str | os.PathLike, what: str) -> dict:
    """A YAML file whose top level is a mapping (empty file: ``{}``); a missing file, a syntax error (with
    its line and column) or another top level (a list) is one ``UserError`` naming ``what`` and the file."""
    import yaml

    path = Path(path)
    try:
        content = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise UserError(f"{path}: {what} not found") from None
    except IsADirectoryError:
        raise UserError(f"{path}: is a folder, not a {what}") from None
    except UnicodeDecodeError:
        raise UserError(f"{path}: {what} is not text (UTF-8 YAML expected)") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise UserError(f"{path}: not valid YAML{where}: {problem}") from None
    if content is None:
        return {}
    if not isinstance(content, dict):
        raise UserError(f"{path}: {what} must be a mapping of names to entries at the top level, "
                        f"not a {type(content).__name__}")
    return content

