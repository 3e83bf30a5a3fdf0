"""Worker processes for the suite runner and the metrics folder mode."""
from __future__ import annotations

import multiprocessing
from concurrent.futures import ProcessPoolExecutor


def process_pool(workers: int) -> ProcessPoolExecutor:
    """A pool of ``workers`` fresh processes ('forkserver' start), not forks of this process.

    A fork copies this process's state, including torch's OpenMP thread team once any torch operation
    has run on more than one thread; the child's first parallel torch operation then waits forever for
    threads that were not copied (GNU libgomp is not fork-safe). That hung the quick suite with two jobs
    inside the test session, after other tests had used torch. Forkserver children start from a clean
    server process and import what their task needs on first use (a few seconds once per worker).
    """
    return ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("forkserver"))
