"""Near-lossless and lossless medcodec on the development evaluation set, against JPEG-LS.

    python benchmarks/bounded_error.py      # -> benchmarks/results/bounded_error.{csv,md}

For each image and E in 0 (lossless), 1, 2, 4: encodes with the shipped model (2 learned
iterations, the default under a residual layer, + the residual layer with max_error E), decodes the file, checks
|decoded - original| <= E on every voxel (bit-exact at E = 0), and reports bpp from the file
size next to JPEG-LS with NEAR = E from ``benchmarks/results/rd_classical.csv`` (same images).
"""

from __future__ import annotations

import csv
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from medcodec import api, prep  # noqa: E402
from medcodec.evaluate import evaluation_images, machine_description  # noqa: E402
from medcodec.options import BOUNDED_ERROR_BASE_ITERATIONS  # noqa: E402

HERE = Path(__file__).resolve().parent
BOUNDS = (0, 1, 2, 4)
BASE_ITERATIONS = BOUNDED_ERROR_BASE_ITERATIONS


def jpegls_rates() -> dict:
    rates = {}
    path = HERE / "results" / "rd_classical.csv"
    if path.exists():
        for r in csv.DictReader(open(path)):
            if r["codec"] == "jpegls":
                rates[(r["image"], int(float(r["param"])))] = float(r["bpp"])
    return rates


def main() -> int:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for e, array in evaluation_images():
            for bound in BOUNDS:
                p = Path(tmp) / f"{e.name}_e{bound}.mlc"
                t0 = time.perf_counter()
                stats = api.compress(array, p, iterations=BASE_ITERATIONS, max_error=bound)
                t_enc = time.perf_counter() - t0
                t0 = time.perf_counter()
                decoded, _ = api.decompress(p)
                t_dec = time.perf_counter() - t0
                err = prep.max_abs_error(array, decoded)
                if err > bound:
                    raise SystemExit(f"BOUND VIOLATED: {e.name} E={bound} max error {err}")
                rows.append({"image": e.name, "max_error": bound, "bpp": round(stats.bpp, 4),
                             "measured_max_error": err, "bit_exact": bool(np.array_equal(decoded, array)),
                             "psnr": round(prep.psnr(array, decoded), 2), "encode_s": round(t_enc, 1),
                             "decode_s": round(t_dec, 1)})
                print(rows[-1], flush=True)
    jls = jpegls_rates()
    with open(HERE / "results" / "bounded_error.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    lines = [f"# Bounded error on the development set ({machine_description()})", "",
             f"medcodec: {BASE_ITERATIONS} learned iterations + residual layer; JPEG-LS NEAR = E "
             "(benchmarks/classical.py). bpp from file bytes; every bound verified by decoding.", "",
             "| image | E | medcodec bpp | JPEG-LS bpp | max error | bit-exact |", "|---|---|---|---|---|---|"]
    for r in rows:
        j = jls.get((r["image"], r["max_error"]))
        lines.append(f"| {r['image']} | {r['max_error']} | {r['bpp']:.3f} | {'-' if j is None else f'{j:.3f}'} "
                     f"| {r['measured_max_error']:g} | {r['bit_exact']} |")
    (HERE / "results" / "bounded_error.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
