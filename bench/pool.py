"""Worker processes for the suite runner and the metrics folder mode."""
from __future__ import annotations

import multiprocessing
import os
import select
import threading
import time
from concurrent.futures import ProcessPoolExecutor


def process_pool(workers: int) -> ProcessPoolExecutor:
    """A pool of ``workers`` fresh processes ('forkserver' start), not forks of this process, that end
    when this process ends, however it ends (``exit_with_parent``).

    A fork copies this process's state, including torch's OpenMP thread team once any torch operation
    has run on more than one thread; the child's first parallel torch operation then waits forever for
    threads that were not copied (GNU libgomp is not fork-safe). That hung the quick suite with two jobs
    inside the test session, after other tests had used torch. Forkserver children start from a clean
    server process and import what their task needs on first use (a few seconds once per worker).
    """
    return ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("forkserver"),
                               initializer=exit_with_parent, initargs=(os.getpid(),))


def exit_with_parent(parent_pid: int) -> None:
    """Worker initializer: end this process at once when ``parent_pid`` (the pool's owner) ends.

    A pool worker is a child of the forkserver, not of the process that made the pool, and each worker
    holds the forkserver's keep-alive pipe, so neither the kernel's parent-death signal nor the
    forkserver's own exit reaches it: after ``kill -9`` of ``python -m bench run`` the workers went on
    fusing and writing into the run folder for minutes. A daemon thread waits on a pidfd of the owner
    (readable once it has exited, zombie or not; Linux 5.3+), else polls it once a second, then
    ``os._exit``s without cleanup, so nothing more is written. An in-flight atomic write leaves at most
    a hidden temporary file.
    """
    try:
        pidfd = os.pidfd_open(parent_pid)
    except (AttributeError, OSError):      # not Linux, or the owner is already gone (ESRCH)
        pidfd = None
        if not _alive(parent_pid):
            os._exit(1)

    def watch():
        if pidfd is not None:
            select.select([pidfd], [], [])
        else:
            while _alive(parent_pid):
                time.sleep(1.0)
        os._exit(1)

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
