"""Cold and warm start: a new process reads a 256x256x108 ``.mlc`` volume with SimpleITK.

    python benchmarks/startup.py            # writes benchmarks/results/startup.txt

Cold: empty XLA compilation cache (the process compiles the decoder for this shape).
Warm: a second process with the cache the first one filled. Each case runs in a fresh
``python -c 'import SimpleITK as sitk; sitk.ReadImage(...)'`` so import, model load,
compile (or cache load) and decode are all counted. The child counts JAX's monitoring
events: programs compiled (cache misses), seconds in XLA's compiler, programs loaded from
the cache; and the parent counts the cache entries the warm process wrote (0 = it compiled
nothing). Two files, 2 and 8 iterations, so the start-up share shows beside the decode.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent


def volume() -> np.ndarray:
    """A real MR head volume of 108 x 256 x 256 (Z, Y, X): the middle 108 sagittal slices of
    the pydeface mean T1 (stored 256 x 256 x 176), so each slice is 256 x 256."""
    from medcodec.data.catalog import entries
    from medcodec.data.fetch import load_volume, path_of

    e = next(x for x in entries("train") if x.name == "mr_head_pydeface")
    v = load_volume(path_of(e)).transpose(2, 0, 1)  # (176, 256, 256)
    return np.ascontiguousarray(v[34:142]).astype(np.int16)


# The child process: JAX's own monitoring events count compilations and cache hits, so
# "did not compile" is measured, not inferred from the wall time.
CHILD = """
import collections, json, time
t0 = time.perf_counter()
import jax.monitoring as m
events, seconds = collections.Counter(), collections.Counter()
m.register_event_listener(lambda name, *a, **k: events.update([name]))
m.register_event_duration_secs_listener(lambda name, s, *a, **k: seconds.update({name: s}))
import SimpleITK as sitk
img = sitk.ReadImage(PATH)
print(json.dumps({"size": img.GetSize(), "process_s": time.perf_counter() - t0,
                  "cache_hits": events["/jax/compilation_cache/cache_hits"],
                  "cache_misses": events["/jax/compilation_cache/cache_misses"],
                  "compile_s": seconds["/jax/core/compile/backend_compile_duration"]}))
"""


def read_in_new_process(path: Path, cache: Path) -> dict:
    """Wall seconds of ``python -c`` reading ``path`` with SimpleITK, and what it compiled."""
    env = dict(os.environ, MEDCODEC_XLA_CACHE=str(cache))
    t = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", CHILD.replace("PATH", repr(str(path)))], env=env,
                          check=True, capture_output=True, text=True)
    wall = time.perf_counter() - t
    return dict(json.loads(done.stdout.strip().splitlines()[-1]), wall_s=wall)


def main() -> int:
    from medcodec import api
    from medcodec.evaluate import machine_description

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        lines = [f"machine: {machine_description()}, Python {platform.python_version()}"]
        for k in (2, 8):
            path = tmp / f"mr_256x256x108_k{k}.mlc"
            api.compress(volume(), path, iterations=k)
            lines.append(f"volume: 108 slices of 256x256 int16 MR (pydeface mean T1), {k} iterations, "
                         f"{path.stat().st_size} bytes")
            for run in range(3):
                cache = tmp / f"cache{k}_{run}"
                cold = read_in_new_process(path, cache)
                before = len(list(cache.iterdir()))
                warm = read_in_new_process(path, cache)
                written = len(list(cache.iterdir())) - before
                for name, r, extra in (("cold", cold, ""), ("warm", warm, f", {written} cache entries written")):
                    lines.append(f"  {name}: {r['wall_s']:.2f} s wall; compiled {r['cache_misses']} programs "
                                 f"({r['compile_s']:.2f} s in XLA), {r['cache_hits']} loaded from the cache{extra}")
    out = "\n".join(lines)
    print(out)
    (HERE / "results").mkdir(exist_ok=True)
    (HERE / "results" / "startup.txt").write_text(out + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
