"""Classical codecs on the development evaluation set: JPEG 2000 (OpenJPEG 9/7), HTJ2K,
JPEG-LS near-lossless and JPEG XL, each swept over its quality parameter (imagecodecs).

    pip install -e '.[bench]'
    python benchmarks/classical.py            # -> benchmarks/results/rd_classical.csv

Rate is bits per pixel from the encoded bytes (volumes: every axial slice coded as a 2D
image, bytes summed); quality is PSNR with peak = the image's max - min, and max abs error,
of the decoded image. Images are shifted to start at 0 (uint16) so every codec takes them.
Every row's ``machine`` column says which machine measured it (``encode_mps`` and
``decode_mps`` depend on it; a column, not a ``#`` first line, because
``benchmarks/bounded_error.py`` reads this file with a plain ``csv.DictReader``).
"""

from __future__ import annotations

import csv
import math
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from medcodec.prep import max_abs_error, psnr  # noqa: E402


def _codecs(bits: int):
    import imagecodecs as ic

    sweep_j2k = [30 + 2 * i for i in range(22)]              # target PSNR (dB, peak 2^bits-1)
    sweep_ht = [10 ** (-5 + 0.25 * i) for i in range(15)]    # relative quantisation step
    sweep_jls = [0, 1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64]  # NEAR (max error)
    sweep_jxl = [0.1, 0.2, 0.35, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 8.0]  # butteraugli distance
    return {
        "jpeg2000": (sweep_j2k, lambda a, p: ic.jpeg2k_encode(a, level=p, bitspersample=bits), ic.jpeg2k_decode),
        "htj2k": (sweep_ht, lambda a, p: ic.htj2k_encode(a, level=p), ic.htj2k_decode),
        "jpegls": (sweep_jls, lambda a, p: ic.jpegls_encode(a, level=p), ic.jpegls_decode),
        "jpegxl": (sweep_jxl, lambda a, p: ic.jpegxl_encode(a, distance=p, effort=7), ic.jpegxl_decode),
    }


def rd_points(name: str, modality: str, array: np.ndarray) -> list[dict]:
    u = (array.astype(np.int64) - int(array.min())).astype(np.uint16)
    bits = max(8, math.ceil(math.log2(int(u.max()) + 1)))
    slices = u.reshape((-1,) + u.shape[-2:])
    rows = []
    for codec, (sweep, enc, dec) in _codecs(bits).items():
        for p in sweep:
            t0 = time.perf_counter()
            blobs = [enc(s, p) for s in slices]
            t1 = time.perf_counter()
            out = np.stack([dec(b) for b in blobs]).reshape(u.shape)
            t2 = time.perf_counter()
            nbytes = sum(len(b) for b in blobs)
            rows.append({"image": name, "modality": modality, "codec": codec, "param": p, "bytes": nbytes,
                         "bpp": 8.0 * nbytes / u.size, "psnr": psnr(u, out), "max_error": max_abs_error(u, out),
                         "encode_mps": u.size / 1e6 / (t1 - t0), "decode_mps": u.size / 1e6 / (t2 - t1)})
    return rows


def main(argv=None) -> int:
    from medcodec.data.catalog import entries
    from medcodec.data.fetch import load_volume, path_of
    from medcodec.evaluate import machine_description

    out = Path((argv or sys.argv[1:] or ["benchmarks/results"])[0])
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for e in entries("eval"):
        vol = load_volume(path_of(e))
        array = vol[0] if vol.shape[0] == 1 else vol
        rows += rd_points(e.name, e.modality, np.rint(array))
        print(f"{e.name}: done", file=sys.stderr)
    machine = machine_description()
    for r in rows:
        r["machine"] = machine
    with open(out / "rd_classical.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
