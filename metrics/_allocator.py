"""Keep freed array memory in the process instead of handing it back to the kernel (glibc only).

Why: a metric on a 256x256 image allocates dozens of 0.5 MB float64 temporaries. glibc serves blocks of
that size with ``mmap`` (or trims them off the heap top when freed), so every temporary comes back as
fresh pages and pays one page fault per 4 KiB on first touch. On the project's virtual machines that
page-fault cost dominated the small metrics: ``to255`` of one image took 1.4 ms instead of 0.06 ms, and
MSE 1.3 ms instead of 0.3 ms (``python -m bench.speed.metrics``, one thread, CPU clock).

``keep_freed_memory`` raises glibc's mmap threshold to its maximum (32 MiB on 64-bit) and the heap
trim threshold to 256 MiB, i.e. ``MALLOC_MMAP_THRESHOLD_`` / ``MALLOC_TRIM_THRESHOLD_`` set from inside
the process. Values are unchanged; the cost is that up to 256 MiB of freed heap stays mapped. It is a
no-op on non-glibc systems and when ``FUSION_KEEP_MALLOC=0`` (or either glibc variable) is set.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import os

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # mallopt parameter numbers from glibc's <malloc.h>
MMAP_THRESHOLD_BYTES = 32 * 1024 * 1024      # glibc's upper limit for the mmap threshold on 64-bit
TRIM_THRESHOLD_BYTES = 256 * 1024 * 1024


def _libc():
    """glibc as a ctypes library, or None elsewhere (musl, macOS, Windows)."""
    name = ctypes.util.find_library("c")
    try:
        return ctypes.CDLL(name) if name else None
    except OSError:
        return None


def release_freed_memory() -> None:
    """Hand freed heap back to the kernel now (glibc ``malloc_trim``), e.g. before measuring a peak that the
    retained heap would otherwise hide; a no-op without glibc."""
    trim = getattr(_libc(), "malloc_trim", None)
    if trim is not None:
        trim(0)


def keep_freed_memory() -> bool:
    """Apply the two ``mallopt`` settings; True when glibc accepted both."""
    if os.environ.get("FUSION_KEEP_MALLOC", "1") == "0":
        return False
    if "MALLOC_MMAP_THRESHOLD_" in os.environ or "MALLOC_TRIM_THRESHOLD_" in os.environ:
        return False  # the user tuned glibc explicitly
    mallopt = getattr(_libc(), "mallopt", None)
    if mallopt is None:  # not glibc
        return False
    mmap_ok = bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES))
    return mmap_ok and bool(mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES))
