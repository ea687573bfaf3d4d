"""End-to-end decode time of real rate-controlled files, against JPEG 2000 at the same rate.

    python benchmarks/speed_files.py [--bpp 0.5 1 2] [--images ct_abdomen_vrun ...]

``benchmarks/speed.py`` times the network alone; this times what a user waits for: encode a
development image with ``--bpp B`` (whatever rate control picks: learned iterations, tiles,
the wavelet residual layer), then ``medcodec.decompress`` of the file (reading, entropy
decoding, network, residual layer; the compiled function cached by a warm-up decode), and
OpenJPEG decoding a JPEG 2000 codestream of the same size (one thread, imagecodecs).
Writes ``speed_files.csv`` with the layer each file uses.
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from medcodec import api, prep, ratecontrol
from medcodec.evaluate import evaluation_images, write_csv


def best_of(fn, runs: int = 3) -> float:
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def j2k_at(array: np.ndarray, nbytes: int):
    """A JPEG 2000 codestream per slice, all together at most about ``nbytes`` (bisection
    on OpenJPEG's quality target): (bytes, PSNR, decode seconds of all of them)."""
    import imagecodecs as ic

    u = (array.astype(np.int64) - int(array.min())).astype(np.uint16)
    bits = max(8, math.ceil(math.log2(int(u.max()) + 1)))
    slices = u.reshape((-1,) + u.shape[-2:])
    lo, hi = 20.0, 100.0  # OpenJPEG's quality target (PSNR, peak 2^bits - 1): more is bigger

    def encode(level):
        return [ic.jpeg2k_encode(s, level=level, codecformat="j2k", bitspersample=bits) for s in slices]

    for _ in range(16):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if sum(len(b) for b in encode(mid)) <= nbytes else (lo, mid)
    blobs = encode(lo)
    out = np.stack([ic.jpeg2k_decode(b) for b in blobs]).reshape(u.shape)
    seconds = best_of(lambda: [ic.jpeg2k_decode(b) for b in blobs])
    return sum(len(b) for b in blobs), prep.psnr(u, out), seconds


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--bpp", type=float, nargs="*", default=[0.5, 1.0, 2.0])
    p.add_argument("--images", nargs="*", default=["ct_abdomen_vrun", "mr_shoulder_mr2"])
    p.add_argument("--out", default="benchmarks/results")
    args = p.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for e, array in evaluation_images(args.images):
            for bpp in args.bpp:
                path = Path(tmp) / f"{e.name}.mlc"
                st = ratecontrol.compress_to(array, path, bpp=bpp, overwrite=True)
                layer = "wavelet" if st.transform_step is not None else "tiles" if st.tiles else "uniform"
                api.decompress(path)  # compile and warm
                seconds = best_of(lambda: api.decompress(path))
                jbytes, jpsnr, jseconds = j2k_at(array, st.bytes)
                row = {"image": e.name, "pixels": array.size, "target_bpp": bpp, "bpp": round(st.bpp, 4),
                       "psnr": round(st.psnr, 2), "layer": layer, "learned_iterations": st.iterations,
                       "decode_s": round(seconds, 3), "decode_mps": round(array.size / 1e6 / seconds, 2),
                       "j2k_bpp": round(8.0 * jbytes / array.size, 4), "j2k_psnr": round(jpsnr, 2),
                       "j2k_decode_s": round(jseconds, 4), "slower_than_j2k": round(seconds / jseconds, 1)}
                rows.append(row)
                print(row, flush=True)
    out = Path(args.out) / "speed_files.csv"
    write_csv(out, rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
