"""Peak memory and time to code one large 2D slice (e.g. a 4096x4096 mammogram-sized image).

    python benchmarks/large_slice.py 4096                              # pieces of <= 2048 (default)
    MEDCODEC_MAX_PIECE_SIDE=8192 python benchmarks/large_slice.py 4096  # the same slice in one piece

Prints size, encode/decode seconds, peak RSS of the process (MiB), bpp and PSNR for a smooth
synthetic uint16 image with noise, coded with 2 iterations. Run each case in a fresh process
(peak RSS only grows).
"""

import os
import platform
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from medcodec import api


def main(argv=None) -> int:
    n = int((argv or sys.argv[1:] or ["4096"])[0])
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:n, :n]
    img = (1000 + 500 * np.sin(xx / 50.0) * np.cos(yy / 70.0) + rng.normal(0, 20, (n, n))).astype(np.uint16)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "big.mlc"
        t0 = time.perf_counter()
        st = api.compress(img, path, iterations=2)
        t1 = time.perf_counter()
        api.decompress(path)
        t2 = time.perf_counter()
        grid = api.info(path)["pieces_per_slice"]
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
    print(f"{platform.machine()}, {os.cpu_count()} cores: {n}x{n} uint16, pieces {grid or 'none (one piece)'}, "
          f"encode {t1 - t0:.1f} s, decode {t2 - t1:.1f} s, peak RSS {peak} MiB, {st.bpp:.3f} bpp, {st.psnr:.2f} dB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
