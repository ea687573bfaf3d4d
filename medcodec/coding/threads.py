"""Slices coded in parallel on threads: the compiled kernels release the GIL, so one
process uses every core without worker processes, and a result never depends on how many
threads ran (each slice is its own stream)."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from typing import Callable


def available_cores() -> int:
    """CPU cores this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def default_threads(n_jobs: int) -> int:
    """Threads for ``n_jobs`` slices: ``$MEDCODEC_THREADS`` if set (1 where processes
    already fill the cores, as in ``medcodec convert``'s Dask workers), else one per core,
    never more than the jobs."""
    setting = os.environ.get("MEDCODEC_THREADS", "").strip()
    cores = int(setting) if setting.isdigit() and int(setting) > 0 else available_cores()
    return max(1, min(cores, n_jobs))


def thread_count(n_jobs: int, threads: int | None = None) -> int:
    """Threads :func:`map_slices` runs ``n_jobs`` on: ``threads`` (None:
    :func:`default_threads`), at least 1, never more than the jobs."""
    return default_threads(n_jobs) if threads is None else max(1, min(int(threads), n_jobs))


def map_slices(function: Callable[[int], object], n: int, threads: int | None = None) -> list:
    """``[function(i) for i in range(n)]``, on up to ``threads`` threads (None:
    :func:`default_threads`), results in order; the first exception is raised."""
    threads = thread_count(n, threads)
    if threads <= 1:
        return [function(i) for i in range(n)]
    with ThreadPoolExecutor(threads, thread_name_prefix="medcodec-slice") as pool:
        return list(pool.map(function, range(n)))
