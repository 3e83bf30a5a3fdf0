"""Inference with a dense-block GAN generator: numpy in, numpy out, near the machine's convolution speed.

``fuse_arrays(generator, a, b)`` is the one inference path: the registered methods, validation during
training and the benchmarks all call it. It computes ``generator(a, b)`` (``Generator.forward``, the
training graph and the reference) to float rounding (tests hold every shipped model to 1e-5) with far
fewer passes over memory:

* **Padded workspace buffers.** Every layer's output is copied once into the interior of a channels-last
  buffer with a one-pixel ring, and the ring is filled by reflection (``reflect_border_``, four thin
  copies); the next 3x3 convolution reads that buffer without padding of its own. There is no padded
  copy per layer, and the buffers (``Workspace``) are kept between calls of a thread, so no layer
  allocates a fresh large tensor (each costs a page fault per 4 KiB on first touch on these machines).
* **No concatenation.** The dense block's layers write their outputs side by side into one buffer; layer
  i reads the channel slice of the stem's and the earlier layers' outputs (``encode_into``).
* **ReLU inside the convolution.** Where PyTorch's oneDNN build offers it
  (``torch.ops.mkldnn._convolution_pointwise``, the op PyTorch's compiler uses for conv + ReLU), the ReLU
  is the convolution's post-op instead of another pass over its output.
* **Lmax in one pass.** The encoder's features are non-negative (each encoder layer ends in a ReLU), so
  max_c |phi| is max_c phi; the fused features are one ``lerp`` into the decoder's first buffer.
* **Bands for a busy machine.** With ``bands`` > 1 the image is cut into that many row bands, each fused by
  its own thread with torch on one intra-op thread (see ``fuse_arrays``); ``bands=1`` uses torch's
  intra-op threads on the whole image, which is faster on an idle machine; ``bands="auto"`` (the
  registered methods) times both now and then and takes the faster.

**Halos.** Bands and tiles are extended by ``receptive_radius(generator)`` pixels (one per 3x3
convolution between input and output; the fusion rule is per pixel) on every side that is not the image
border, and only their centre is kept: every kept pixel sees exactly the inputs it sees in the whole
image, so the pieces agree with one piece to float rounding. Above ``TILE_ABOVE`` pixels an image is fused
in tiles of ``TILE_SIZE``, so the memory is that of the tiles in flight whatever the image size. Images
smaller than 2 pixels along a side cannot be reflection padded: a one-line error.
"""
from __future__ import annotations

import math
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from common.errors import UserError
from methods.densegan.fusion_rules import FusionLayer
from methods.densegan.model import DenseEncoder, Generator, PlainEncoder, StraightThroughClamp
from methods.registry import single_threaded_torch

TILE_ABOVE = 1024 * 1024        # pixels; larger images are fused in tiles
TILE_SIZE = 384                 # kept pixels per tile side: about 150 MB of buffers per thread, 8 % halo work


def _pointwise_relu_available() -> bool:
    try:
        x = torch.zeros(1, 2, 4, 4).to(memory_format=torch.channels_last)
        w = torch.zeros(2, 2, 3, 3)
        torch.ops.mkldnn._convolution_pointwise(x, w, None, [0, 0], [1, 1], [1, 1], 1, "relu", [], "")
        return True
    except (AttributeError, RuntimeError, NotImplementedError):
        return False


_FUSED_RELU: bool | None = None


def conv_valid(x: torch.Tensor, conv: nn.Conv2d, relu: bool) -> torch.Tensor:
    """``conv`` without padding on an already padded ``x``, then ReLU when asked (fused into oneDNN on CPU)."""
    global _FUSED_RELU
    if relu and x.device.type == "cpu":
        if _FUSED_RELU is None:
            _FUSED_RELU = _pointwise_relu_available()
        if _FUSED_RELU:
            return torch.ops.mkldnn._convolution_pointwise(x, conv.weight, conv.bias, [0, 0], [1, 1], [1, 1], 1,
                                                           "relu", [], "")
    y = F.conv2d(x, conv.weight, conv.bias)
    return y.relu_() if relu else y


def reflect_border_(padded: torch.Tensor) -> torch.Tensor:
    """Fill the one-pixel ring of ``padded`` (N, C, H + 2, W + 2) from its interior, as reflection padding
    does (``F.pad(interior, (1, 1, 1, 1), mode="reflect")``); rows first, so the corners reflect twice."""
    padded[:, :, 0, 1:-1] = padded[:, :, 2, 1:-1]
    padded[:, :, -1, 1:-1] = padded[:, :, -3, 1:-1]
    padded[:, :, :, 0] = padded[:, :, :, 2]
    padded[:, :, :, -1] = padded[:, :, :, -3]
    return padded


def interior(padded: torch.Tensor) -> torch.Tensor:
    return padded[:, :, 1:-1, 1:-1]


class Workspace:
    """Reflection-padded channels-last buffers for one image size, kept between calls of one generator.

    Every convolution reads a padded buffer (or a channel slice of one) with no padding of its own and its
    output is copied into the interior of the next padded buffer, whose ring is then filled from it: no
    padded copy and no concatenation per layer, and no fresh large tensor (a fresh tensor above glibc's
    mmap threshold costs a page fault per 4 KiB on first touch).
    """

    def __init__(self, shape: tuple[int, int], device, dtype):
        self.shape, self.device, self.dtype = shape, device, dtype
        self.buffers: dict[tuple, torch.Tensor] = {}

    def padded(self, name: str, n: int, c: int) -> torch.Tensor:
        key = (name, n, c)
        if key not in self.buffers:
            h, w = self.shape
            self.buffers[key] = torch.empty((n, c, h + 2, w + 2), dtype=self.dtype, device=self.device,
                                            memory_format=torch.channels_last)
        return self.buffers[key]


def _workspace(generator: Generator, shape, device, dtype) -> Workspace:
    """The calling thread's workspace for ``generator`` (one image size at a time per thread)."""
    spaces = generator.__dict__.setdefault("_inference_workspaces", {})
    key = threading.get_ident()
    ws = spaces.get(key)
    if ws is None or (ws.shape, ws.device, ws.dtype) != (tuple(shape), device, dtype):
        ws = spaces[key] = Workspace(tuple(shape), device, dtype)
    return ws


def _conv_into(src: torch.Tensor, conv: nn.Conv2d, dst: torch.Tensor, relu: bool = True) -> torch.Tensor:
    interior(dst).copy_(conv_valid(src, conv, relu))
    return reflect_border_(dst)


def receptive_radius(generator: Generator) -> int:
    """Pixels an output pixel reaches into its input: one per 3x3 convolution (the fusion rule is per pixel)."""
    return sum((m.kernel_size[0] - 1) // 2 for m in generator.modules() if isinstance(m, nn.Conv2d))


def _supports_fast_path(generator: Generator) -> bool:
    return (isinstance(generator.encoder, (DenseEncoder, PlainEncoder)) and isinstance(generator.fusion, FusionLayer)
            and all(isinstance(m, (nn.Conv2d, nn.ReLU, StraightThroughClamp, nn.Sigmoid))
                    for m in generator.decoder.net)
            and all(m.kernel_size == (3, 3) and m.padding_mode == "reflect" and m.stride == (1, 1)
                    and m.groups == 1 for m in generator.modules() if isinstance(m, nn.Conv2d)))


def encode_into(encoder: nn.Module, pair: torch.Tensor, ws: Workspace) -> torch.Tensor:
    """The shared encoder on both sources (padded ``pair``, (2, 1, H + 2, W + 2)); returns the padded
    features (2, C, H + 2, W + 2). The dense block's layer i reads the channel slice holding the stem's
    and layers < i's outputs and writes its own slice: the concatenation costs nothing."""
    if isinstance(encoder, PlainEncoder):
        x = _conv_into(pair, encoder.stem, ws.padded("plain0", 2, encoder.stem.out_channels))
        for i, conv in enumerate(encoder.block):
            x = _conv_into(x, conv, ws.padded(f"plain{(i + 1) % 2}" if i + 1 < len(encoder.block) else "features",
                                              2, conv.out_channels))
        return x
    total = encoder.stem.out_channels + sum(conv.out_channels for conv in encoder.block)
    feats = ws.padded("features", 2, total)
    end = encoder.stem.out_channels
    _conv_into(pair, encoder.stem, feats[:, :end])
    for conv in encoder.block:
        _conv_into(feats[:, :end], conv, feats[:, end:end + conv.out_channels])
        end += conv.out_channels
    return feats


def lmax_into(feats: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
    """Lmax rule (``fusion_rules.lmax_fusion``) of non-negative features ``feats`` (2, C, H, W): source A at
    batch index 0, B at 1, into ``out`` (1, C, H, W).

    act_k = max_c phi_k (the L-infinity norm, as phi >= 0 after the encoder's last ReLU),
    w_A = act_A / (act_A + act_B), F = phi_B + w_A (phi_A - phi_B) (one ``lerp`` pass).
    """
    act = feats.amax(dim=1, keepdim=True)
    weight_a = act[:1] / (act[:1] + act[1:]).clamp_min_(1e-12)
    return torch.lerp(feats[1:], feats[:1], weight_a, out=out)


def fast_forward(generator: Generator, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``generator(a, b)`` for (1, 1, H, W) tensors by the workspace path described in the module docstring."""
    ws = _workspace(generator, a.shape[-2:], a.device, a.dtype)
    pair = ws.padded("input", 2, 1)
    interior(pair)[0].copy_(a[0])
    interior(pair)[1].copy_(b[0])
    feats = encode_into(generator.encoder, reflect_border_(pair), ws)
    x = ws.padded("fused", 1, feats.shape[1])
    if generator.fusion.rule == "lmax":
        lmax_into(interior(feats), interior(x))
    else:
        phi = interior(feats).contiguous(memory_format=torch.channels_last)
        interior(x).copy_(generator.fusion(phi[:1], phi[1:]))
    reflect_border_(x)
    layers = list(generator.decoder.net)
    convs = [i for i, layer in enumerate(layers) if isinstance(layer, nn.Conv2d)]
    for i in convs[:-1]:
        relu = isinstance(layers[i + 1], nn.ReLU)
        x = _conv_into(x, layers[i], ws.padded(f"decoder{i}", 1, layers[i].out_channels), relu)
    y = conv_valid(x, layers[convs[-1]], relu=False)
    for layer in layers[convs[-1] + 1:]:
        if isinstance(layer, nn.Sigmoid):
            y = y.sigmoid_()
        elif isinstance(layer, StraightThroughClamp):
            y = y.clamp_(0.0, 1.0)
        elif isinstance(layer, nn.ReLU):
            y = y.relu_()
    return y


def _as_tensor(x: np.ndarray, device) -> torch.Tensor:
    return (torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))[None, None]
            .to(device, memory_format=torch.channels_last))


@torch.inference_mode()
def _forward(generator: Generator, a: np.ndarray, b: np.ndarray, device) -> np.ndarray:
    ta, tb = _as_tensor(a, device), _as_tensor(b, device)
    if _supports_fast_path(generator):
        return fast_forward(generator, ta, tb)[0, 0].float().cpu().numpy()
    return generator(ta, tb)[0, 0].float().cpu().numpy()


def tile_starts(length: int, tile: int) -> list[int]:
    """Start offsets of at most ``tile``-pixel pieces, as equal as can be, covering ``length`` pixels."""
    count = max(1, math.ceil(length / tile))
    size = math.ceil(length / count)
    return [i * size for i in range(count)]


def plan_regions(h: int, w: int, tile: int, bands: int, halo: int) -> list[tuple[slice, slice, slice, slice]]:
    """(kept rows, kept cols, computed rows, computed cols) of every region an image is fused in.

    ``tile`` > 0: tiles of at most ``tile`` x ``tile`` kept pixels; else ``bands`` row bands. Each region is
    computed on its kept part plus ``halo`` pixels on every side inside the image, and only the kept part
    is used, so every kept pixel sees the same inputs as in the whole image.
    """
    row_size = tile if tile else math.ceil(h / bands)
    rows = tile_starts(h, row_size)
    cols = tile_starts(w, tile) if tile else [0]
    regions = []
    for i, y0 in enumerate(rows):
        y1 = rows[i + 1] if i + 1 < len(rows) else h
        for j, x0 in enumerate(cols):
            x1 = cols[j + 1] if j + 1 < len(cols) else w
            regions.append((slice(y0, y1), slice(x0, x1), slice(max(0, y0 - halo), min(h, y1 + halo)),
                            slice(max(0, x0 - halo), min(w, x1 + halo))))
    return regions


_POOLS: dict[int, ThreadPoolExecutor] = {}
MIN_BAND = 32      # rows; thinner images are fused in one piece
AUTO_RECHECK_S = 30.0   # seconds an automatic bands choice is kept before both ways are timed again
_AUTO_BANDS: dict[tuple, tuple[int, float]] = {}


def auto_bands(generator: Generator, a: np.ndarray, b: np.ndarray,
               tile: int | None = None) -> tuple[int, np.ndarray | None]:
    """The faster of ``bands`` 1 and ``bands`` = torch's thread count for this generator and image size, as
    last timed (both ways, one call each, at most every ``AUTO_RECHECK_S`` seconds: the machine's load
    decides which is faster, see ``fuse_arrays``). Returns the choice and, when it timed both just now, the
    fused image of the faster call (the two agree to float rounding), else None."""
    threads = torch.get_num_threads()
    if threads < 2 or next(generator.parameters()).device.type != "cpu":
        return 1, None
    key = (id(generator), a.shape, threads)
    cached = _AUTO_BANDS.get(key)
    if cached and time.monotonic() - cached[1] < AUTO_RECHECK_S:
        return cached[0], None
    timed = []
    for bands in (1, threads):
        start = time.perf_counter()
        fused = fuse_arrays(generator, a, b, tile=tile, bands=bands)
        timed.append((time.perf_counter() - start, bands, fused))
    _, bands, fused = min(timed, key=lambda t: t[0])
    _AUTO_BANDS[key] = (bands, time.monotonic())
    return bands, fused


def fuse_arrays(generator: Generator, a: np.ndarray, b: np.ndarray, *, tile: int | None = None,
                bands: int | str = 1) -> np.ndarray:
    """F = G(A, B) for grey float (H, W) sources in [0, 1]; float32 (H, W) in [0, 1].

    ``tile`` None fuses images up to ``TILE_ABOVE`` pixels whole and larger ones in tiles of
    ``TILE_SIZE``; an integer forces tiles of that many kept pixels per side (0: never tile).

    ``bands`` "auto" (the registered methods' choice) takes whichever of the two ways below was faster
    when last timed for this generator and image size (``auto_bands``). ``bands`` 1 computes with torch's
    intra-op threads. ``bands`` N > 1 cuts the image into N
    row bands (or shares the tiles among N threads), each computed by its own thread with torch on one
    intra-op thread. Why both: every multi-threaded torch operation waits at its end for its slowest
    thread; on a shared machine with another process on one of the cores that wait is a scheduler time
    slice per operation, and independent single-threaded bands never wait for each other (measured with
    ``bench/speed/densegan.py``: about 2x faster than two intra-op threads at a load average of 8 on 2
    cores), while on an idle machine the intra-op threads are faster (bands pay the halos and, for the
    fused convolution op, the interpreter lock). The pieces overlap by the receptive radius, so every
    choice gives the same result as one piece.
    """
    if a.shape != b.shape or a.ndim != 2:
        raise UserError(f"densegan: sources must be two grey images of one size, got {a.shape} and {b.shape}")
    h, w = a.shape
    if min(h, w) < 2:
        raise UserError(f"densegan: a {w}x{h} image is too small (reflection padding needs at least 2 pixels "
                        f"along each side)")
    if bands == "auto":
        bands, fused = auto_bands(generator, a, b, tile)
        if fused is not None:
            return fused
    if tile is None:
        tile = TILE_SIZE if h * w > TILE_ABOVE else 0
    tile = tile if tile and (h > tile or w > tile) else 0
    bands = max(1, int(bands))
    device = next(generator.parameters()).device
    row_bands = min(bands, max(1, h // MIN_BAND)) if not tile else bands
    if device.type != "cpu" or (not tile and row_bands == 1):
        fused = _forward(generator, a, b, device).astype(np.float32, copy=False)
    else:
        regions = plan_regions(h, w, tile, row_bands, receptive_radius(generator))
        fused = np.empty((h, w), np.float32)

        def run(region):
            rows, cols, ext_rows, ext_cols = region
            part = _forward(generator, a[ext_rows, ext_cols], b[ext_rows, ext_cols], device)
            fused[rows, cols] = part[rows.start - ext_rows.start:rows.stop - ext_rows.start,
                                     cols.start - ext_cols.start:cols.stop - ext_cols.start]

        if bands == 1:
            for region in regions:
                run(region)
        else:
            with single_threaded_torch():
                pool = _POOLS.get(bands) or _POOLS.setdefault(bands, ThreadPoolExecutor(bands))
                list(pool.map(run, regions))
    return np.clip(fused, 0.0, 1.0, out=fused)
