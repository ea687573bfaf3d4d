"""Compiled (numba) kernels of the coders: the range coder and models (:mod:`.rangecoder`),
the per-slice walk of each layer (:mod:`.codes`, :mod:`.bounded_error`,
:mod:`.wavelet_layer`) and the inverse CDF 9/7 lifting (:mod:`.wavelet`), each slice one
call that releases the GIL, so threads code slices in parallel.

Importing this package imports numba (about 0.3 s); the public coders in
:mod:`medcodec.coding` import it only when they code. Compiled code is cached on disk
(``cache=True``): in ``$NUMBA_CACHE_DIR`` when set, else next to the XLA cache in
``<medcodec cache>/numba`` (``$MEDCODEC_CACHE``, default ``~/.cache/medcodec``), so a
second process loads instead of compiling (see ``benchmarks/startup.py``).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path


def cache_dir() -> Path:
    """Where compiled kernels are kept (when ``$NUMBA_CACHE_DIR`` does not say)."""
    base = os.environ.get("MEDCODEC_CACHE") or Path.home() / ".cache" / "medcodec"
    return Path(base) / "numba"


def _import_arraymath_without_blas_probe() -> None:
    """numba's CPU target, on its first compile or cache load, imports ``numba.np.arraymath``,
    which imports all of scipy.linalg (about 0.4 s of a warm 1 s ``medcodec decode``) only
    to learn whether its ``np.cov`` may call BLAS. The kernels call no BLAS, so that module is
    imported here with the probe's import failing: numba's ``np.cov`` then uses its own inner
    product, and ``np.dot`` / ``np.linalg`` still import scipy when a function uses them.
    Nothing changes where either module is already loaded."""
    probe = "scipy.linalg.cython_blas"
    if "numba.np.arraymath" in sys.modules or probe in sys.modules:
        return
    sys.modules[probe] = None  # makes ``import scipy.linalg.cython_blas`` raise ImportError
    try:
        import numba.np.arraymath  # noqa: F401
    finally:
        if probe in sys.modules and sys.modules[probe] is None:
            del sys.modules[probe]


def _numba():
    import numba

    _import_arraymath_without_blas_probe()

    if not os.environ.get("NUMBA_CACHE_DIR") and not numba.config.CACHE_DIR:
        folder = cache_dir()
        try:
            folder.mkdir(parents=True, exist_ok=True)
            numba.config.CACHE_DIR = str(folder)
        except OSError:  # unwritable home: numba falls back to __pycache__ or no cache
            pass
    return numba


def njit(function=None, *, inline: bool = False):
    """numba's nopython compilation, cached on disk, without the GIL; ``inline``: a small
    helper inlined into its callers (numba's ``inline="always"``)."""
    def compile_(f):
        return _numba().njit(cache=True, nogil=True, inline="always" if inline else "never")(f)

    return compile_ if function is None else compile_(function)
