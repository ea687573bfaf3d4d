"""Wall time of ``medcodec decode`` in a new process, cold and warm, for a rate-controlled
20-slice 256x256 MR series at 1 bpp (a file whose slices use no learned iteration: the
wavelet layer alone), against OpenJPEG decoding the same volume at the same bytes.

    python benchmarks/cli_decode.py        # writes benchmarks/results/cli_decode.txt

Cold: an empty medcodec cache (``MEDCODEC_CACHE`` pointed at a new folder), so the process
compiles the coder's kernels; warm: a second process with the cache the first one filled
(and, as Python does by default, the bytecode the first one wrote).
Each run is ``python -c`` calling ``medcodec.cli.run`` (what the ``medcodec`` script runs)
and reports, from an exit handler, the time inside the process and whether JAX or numba were
loaded; the wall time is measured outside, best and median of five warm runs. The data:
20 middle sagittal slices of the pydeface mean T1 (int16).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent

CHILD = """
import atexit, json, sys, time
t0 = time.perf_counter()
atexit.register(lambda: print(json.dumps({"in_process_s": time.perf_counter() - t0,
                                          "jax_loaded": "jax" in sys.modules,
                                          "numba_loaded": "numba" in sys.modules})))
from medcodec.cli import run
sys.argv = ["medcodec", "--quiet", "decode", sys.argv[1], sys.argv[2], "--force"]
run()
"""


def series() -> np.ndarray:
    """20 x 256 x 256 int16: the middle sagittal slices of the pydeface mean T1 (those of
    ``benchmarks/startup.py``'s volume, which starts at slice 34)."""
    from startup import volume  # benchmarks/ is this script's folder, first on sys.path

    return np.ascontiguousarray(volume()[44:64])


def decode_in_new_process(path: Path, out: Path, cache: Path) -> dict:
    env = dict(os.environ, MEDCODEC_CACHE=str(cache))
    env.pop("NUMBA_CACHE_DIR", None)
    # Python's default: a process writes its modules' bytecode, and the next one loads it
    # (this project's sandbox sets PYTHONDONTWRITEBYTECODE, which left every warm run
    # compiling medcodec's sources again)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    t = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", CHILD, str(path), str(out)], env=env, check=True,
                          capture_output=True, text=True)
    wall = time.perf_counter() - t
    return dict(json.loads(done.stdout.strip().splitlines()[-1]), wall_s=wall)


def openjpeg_seconds(volume: np.ndarray, nbytes: int) -> tuple[int, float]:
    """(bytes, best-of-5 decode seconds of all slices) of OpenJPEG codestreams, one per
    slice, bisected on its PSNR knob to at most ``nbytes`` in all (one thread)."""
    import imagecodecs as ic

    u = (volume.astype(np.int64) - int(volume.min())).astype(np.uint16)
    bits = max(8, int(np.ceil(np.log2(int(u.max()) + 1))))
    lo, hi = 20.0, 100.0
    for _ in range(14):
        mid = (lo + hi) / 2
        size = sum(len(ic.jpeg2k_encode(s, level=mid, codecformat="j2k", bitspersample=bits)) for s in u)
        lo, hi = (mid, hi) if size <= nbytes else (lo, mid)
    blobs = [ic.jpeg2k_encode(s, level=lo, codecformat="j2k", bitspersample=bits) for s in u]
    times = []
    for _ in range(5):
        t = time.perf_counter()
        for b in blobs:
            ic.jpeg2k_decode(b)
        times.append(time.perf_counter() - t)
    return sum(map(len, blobs)), min(times)


def main() -> int:
    import SimpleITK as sitk

    from medcodec import ratecontrol
    from medcodec.evaluate import machine_description

    lines = [f"machine: {machine_description()}"]
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        volume = series()
        src, path = tmp / "mr.nii.gz", tmp / "mr.mlc"
        sitk.WriteImage(sitk.GetImageFromArray(volume), str(src))
        st = ratecontrol.compress_to(volume, path, bpp=1.0, overwrite=True)
        lines.append(f"file: 20x256x256 int16 MR at --bpp 1: {st.bytes} bytes, {st.bpp:.3f} bpp, "
                     f"PSNR {st.psnr:.2f} dB, {st.iterations} learned iterations, "
                     f"wavelet layer: {st.transform_step is not None}")
        for run in range(3):
            cache = tmp / f"cache{run}"
            cold = decode_in_new_process(path, tmp / "out.nii.gz", cache)
            warm = [decode_in_new_process(path, tmp / "out.nii.gz", cache) for _ in range(5)]
            walls = sorted(r["wall_s"] for r in warm)
            lines.append(f"  cold: {cold['wall_s']:.2f} s wall ({cold['in_process_s']:.2f} s inside the process); "
                         f"JAX loaded: {cold['jax_loaded']}, numba loaded: {cold['numba_loaded']}")
            lines.append(f"  warm x5: {walls[0]:.2f} s best, {walls[2]:.2f} s median wall "
                         f"({np.median([r['in_process_s'] for r in warm]):.2f} s median inside the process); "
                         f"JAX loaded: {any(r['jax_loaded'] for r in warm)}, "
                         f"numba loaded: {all(r['numba_loaded'] for r in warm)}")
        nbytes, seconds = openjpeg_seconds(volume, st.bytes)
        lines.append(f"OpenJPEG (imagecodecs, one thread, in process, no start-up): {nbytes} bytes, "
                     f"decode {seconds * 1000:.1f} ms")
    out = "\n".join(lines)
    print(out)
    (HERE / "results").mkdir(exist_ok=True)
    (HERE / "results" / "cli_decode.txt").write_text(out + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
