"""Training-data packs: every training volume in one compressed ``.npz`` file.

The GPU machines that train medcodec have no network, so the data travels with the job:
``medcodec fetch-data --pack train.npz`` writes the training set (stored values, exact:
integers as int32) and ``medcodec train --data train.npz`` trains from it. A pack records
its role and the catalog names it holds; a pack with evaluation images is refused for
training.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np

from ..errors import InputError
from ..io.atomic import atomic_write
from .catalog import FORBIDDEN_IN_TRAINING, entries

_INDEX = "__index__"


def write_pack(path: Path, volumes: dict[str, np.ndarray], role: str) -> Path:
    """Write {name: volume} as a compressed npz (atomically); integral volumes as int32."""
    path = Path(path)
    arrays = {}
    for name, v in volumes.items():
        v = np.asarray(v)
        integral = np.all(np.isfinite(v)) and np.array_equal(v, np.round(v))
        arrays[name] = v.astype(np.int32) if integral else v.astype(np.float32)
    index = {"role": role, "names": sorted(arrays)}
    arrays[_INDEX] = np.frombuffer(json.dumps(index).encode(), dtype=np.uint8)
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    atomic_write(path, [buffer.getvalue()], overwrite=True)
    return path


def read_pack(path: Path, role: str = "train") -> dict[str, np.ndarray]:
    """{name: float32 volume (Z, Y, X)} from a pack; refuses a pack of the wrong role."""
    try:
        with np.load(Path(path), allow_pickle=False) as z:
            index = json.loads(bytes(z[_INDEX]).decode())
            vols = {n: z[n].astype(np.float32) for n in index["names"]}
    except (OSError, KeyError, ValueError) as e:
        raise InputError(f"{path} is not a medcodec data pack ({e}); make one with "
                         "`medcodec fetch-data --pack FILE`") from e
    if index.get("role") != role:
        raise InputError(f"{path} holds {index.get('role')!r} images, not {role!r} ones")
    if role == "train":
        eval_names = {e.name for e in entries("eval")}
        bad = [n for n in vols if n in eval_names or any(t in n for t in FORBIDDEN_IN_TRAINING)]
        if bad:
            raise InputError(f"{path} contains evaluation images ({', '.join(bad)}): never train on them")
    return vols
