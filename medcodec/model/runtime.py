"""JAX runtime set-up shared by everything that codes pixels: the persistent compilation cache.

The first encode/decode of a new shape compiles the network (seconds). JAX's persistent
compilation cache keeps the compiled programs on disk, so a second process (a new
``sitk.ReadImage`` of a ``.mlc`` of a cached shape) loads them instead of compiling.
Location: ``$MEDCODEC_XLA_CACHE``, else ``<medcodec cache>/xla`` (``$MEDCODEC_CACHE`` or
``~/.cache/medcodec``); ``MEDCODEC_XLA_CACHE=0`` turns it off. JAX writes each entry to a
temporary file and renames it, so concurrent processes may share the folder. A cache folder
the user configured in JAX itself is left alone.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path


def cache_dir() -> Path | None:
    """The folder medcodec uses for compiled programs, or None when turned off."""
    setting = os.environ.get("MEDCODEC_XLA_CACHE")
    if setting is not None and setting.strip().lower() in ("0", "off", "false", ""):
        return None
    if setting:
        return Path(setting)
    base = os.environ.get("MEDCODEC_CACHE") or Path.home() / ".cache" / "medcodec"
    return Path(base) / "xla"


@functools.lru_cache(maxsize=1)
def enable_compilation_cache() -> Path | None:
    """Point JAX's persistent compilation cache at :func:`cache_dir` (once per process).

    Returns the folder in use (None if off, unwritable, or already set by the user).
    """
    import jax

    folder = cache_dir()
    if folder is None or jax.config.jax_compilation_cache_dir:
        return None
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None  # a read-only home: run without the cache rather than fail
    jax.config.update("jax_compilation_cache_dir", str(folder))
    # cache every program: the codec's are small but each costs seconds to compile
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    return folder


def accelerated() -> bool:
    """True when JAX computes on a GPU or TPU (imports JAX)."""
    import jax

    return jax.default_backend() != "cpu"


def pin_worker_device(worker_index: int) -> None:
    """On a machine with several GPUs, give batch worker ``worker_index`` its own one."""
    import jax

    gpus = [d for d in jax.local_devices() if d.platform != "cpu"]
    if len(gpus) > 1:
        jax.config.update("jax_default_device", gpus[worker_index % len(gpus)])


def backend_description() -> str:
    """"jax <version> on <platform>" of the default device (imports JAX)."""
    import jax

    return f"jax {jax.__version__} on {jax.devices()[0].platform}"
