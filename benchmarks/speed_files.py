"""End-to-end encode and decode time of real rate-controlled files, against JPEG 2000 and
HTJ2K at the same rate, in the same run.

    python benchmarks/speed_files.py [--bpp 0.5 1 2] [--images ct_abdomen_vrun ...] [--modes ...]

``benchmarks/speed.py`` times the network alone; this times what a user waits for: encode a
development image with ``--bpp B`` (mode ``ratecontrol``: whatever rate control picks,
learned iterations, tiles, the wavelet residual layer; mode ``nowavelet``: the learned layers
with adaptive tiles only, i.e. the network path), then ``medcodec.decompress`` of the file
(reading, entropy decoding, network, residual layer; the compiled function cached by a
warm-up decode), and OpenJPEG and HTJ2K (imagecodecs, one thread) decoding codestreams of the
same size. Images: a 512x512 CT slice, a 1024x1024 MR slice and a 116x150x155 MR volume.
Writes ``speed_files.csv`` (first line: the machine) with the layer each file uses.
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


def classical_at(array: np.ndarray, nbytes: int, codec: str):
    """JPEG 2000 (OpenJPEG) or HTJ2K codestreams per slice, all together at most about
    ``nbytes`` (bisection on the codec's quality knob): (bytes, PSNR, decode seconds of all)."""
    import imagecodecs as ic

    u = (array.astype(np.int64) - int(array.min())).astype(np.uint16)
    bits = max(8, math.ceil(math.log2(int(u.max()) + 1)))
    slices = u.reshape((-1,) + u.shape[-2:])
    if codec == "jpeg2k":  # OpenJPEG's quality target (PSNR, peak 2^bits - 1): more is bigger
        lo, hi, bigger_up = 20.0, 100.0, True

        def encode(level):
            return [ic.jpeg2k_encode(s, level=level, codecformat="j2k", bitspersample=bits) for s in slices]
        decode = ic.jpeg2k_decode
    else:  # HTJ2K's level: a relative quantisation step 10^e (more is smaller), bisected in e
        lo, hi, bigger_up = -7.0, 0.0, False

        def encode(e):
            return [ic.htj2k_encode(s, level=10.0 ** e) for s in slices]
        decode = ic.htj2k_decode
    for _ in range(16):
        mid = (lo + hi) / 2
        small = sum(len(b) for b in encode(mid)) <= nbytes
        lo, hi = (mid, hi) if small == bigger_up else (lo, mid)
    blobs = encode(lo if bigger_up else hi)
    out = np.stack([decode(b) for b in blobs]).reshape(u.shape)
    seconds = best_of(lambda: [decode(b) for b in blobs])
    return sum(len(b) for b in blobs), prep.psnr(u, out), seconds


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--bpp", type=float, nargs="*", default=[0.5, 1.0, 2.0])
    p.add_argument("--images", nargs="*", default=["ct_abdomen_vrun", "mr_shoulder_mr2", "mr_head_atlas"])
    p.add_argument("--modes", nargs="*", default=["ratecontrol", "nowavelet"], choices=["ratecontrol", "nowavelet"])
    p.add_argument("--out", default="benchmarks/results")
    args = p.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for e, array in evaluation_images(args.images):
            mp = array.size / 1e6
            for mode in args.modes:
                for bpp in args.bpp:
                    path = Path(tmp) / f"{e.name}.mlc"
                    t = time.perf_counter()
                    st = ratecontrol.compress_to(array, path, bpp=bpp, overwrite=True, wavelet=mode == "ratecontrol")
                    encode_s = time.perf_counter() - t
                    layer = "wavelet" if st.transform_step is not None else "tiles" if st.tiles else "uniform"
                    api.decompress(path)  # compile and warm
                    seconds = best_of(lambda: api.decompress(path))
                    row = {"image": e.name, "shape": "x".join(map(str, array.shape)), "mode": mode, "target_bpp": bpp,
                           "bpp": round(st.bpp, 4), "psnr": round(st.psnr, 2), "layer": layer,
                           "learned_iterations": st.iterations,
                           "mean_tile_iterations": round(float(st.tiles["mean_iterations"]), 2) if st.tiles else "",
                           "encode_s": round(encode_s, 1), "decode_s": round(seconds, 3),
                           "decode_mps": round(mp / seconds, 2)}
                    for codec in ("jpeg2k", "htj2k"):
                        cbytes, cpsnr, cseconds = classical_at(array, st.bytes, codec)
                        row.update({f"{codec}_bpp": round(8.0 * cbytes / array.size, 4),
                                    f"{codec}_psnr": round(cpsnr, 2), f"{codec}_decode_s": round(cseconds, 4),
                                    f"slower_than_{codec}": round(seconds / cseconds, 1)})
                    rows.append(row)
                    print(row, flush=True)
    out = Path(args.out) / "speed_files.csv"
    write_csv(out, rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
