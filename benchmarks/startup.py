"""Cold and warm start: a new process reads a 256x256x108 ``.mlc`` volume with SimpleITK.

    python benchmarks/startup.py            # writes benchmarks/results/startup.txt

Cold: empty XLA compilation cache (the process compiles the decoder for this shape).
Warm: a second process with the cache the first one filled. Each case runs in a fresh
``python -c 'import SimpleITK as sitk; sitk.ReadImage(...)'`` so import, model load,
compile (or cache load) and decode are all counted. Also reports how many new cache
entries the warm process wrote (0 = it compiled nothing).
"""

from __future__ import annotations

import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent


def volume() -> np.ndarray:
    """A real MR head volume cropped to 108 x 256 x 256 (Z, Y, X): the pydeface mean T1."""
    from medcodec.data.catalog import entries
    from medcodec.data.fetch import load_volume, path_of

    e = next(x for x in entries("train") if x.name == "mr_head_pydeface")
    v = load_volume(path_of(e))
    return np.ascontiguousarray(v[:108, :256, :256]).astype(np.int16)


def read_in_new_process(path: Path, cache: Path) -> float:
    env = dict(os.environ, MEDCODEC_XLA_CACHE=str(cache))
    code = f"import SimpleITK as sitk; img = sitk.ReadImage({str(path)!r}); print(img.GetSize())"
    t = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], env=env, check=True, capture_output=True)
    return time.perf_counter() - t


def main() -> int:
    from medcodec import api

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        path = tmp / "mr_256x256x108.mlc"
        api.compress(volume(), path, iterations=8)
        lines = [f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
                 f"volume: 256x256x108 int16 MR, 8 iterations, {path.stat().st_size} bytes"]
        colds, warms, new_entries = [], [], []
        for run in range(3):
            cache = tmp / f"cache{run}"
            colds.append(read_in_new_process(path, cache))
            before = len(list(cache.iterdir()))
            warms.append(read_in_new_process(path, cache))
            new_entries.append(len(list(cache.iterdir())) - before)
        lines.append(f"cold start (empty cache), 3 runs: {', '.join(f'{t:.2f}' for t in colds)} s "
                     f"(median {statistics.median(colds):.2f} s)")
        lines.append(f"warm start (cache filled by the cold run): {', '.join(f'{t:.2f}' for t in warms)} s "
                     f"(median {statistics.median(warms):.2f} s); cache entries written by warm runs: {new_entries}")
    out = "\n".join(lines)
    print(out)
    (HERE / "results").mkdir(exist_ok=True)
    (HERE / "results" / "startup.txt").write_text(out + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
