"""Rate-distortion of rate control: adaptive tiles, residual layers, the chosen split.

    python benchmarks/rd_adaptive.py [--images NAME ...]    # writes benchmarks/results/rd_adaptive.csv
    python benchmarks/rd_adaptive.py --no-wavelet --merge   # the same without the wavelet layer
    python benchmarks/rd_compare.py                          # adds them to the comparison

Encodes every development image with ``--bpp`` targets and ``--psnr`` targets (40 and 45 dB)
through rate control (every candidate: uniform prefix, adaptive tiles, the bounded-error
and the wavelet residual layers over 0-8 learned iterations; the one that wins is
recorded in ``layer`` with its ``iterations``), decodes each file and records the rate from
its bytes and the PSNR (peak = image max - min) of the really decoded image. Rows are
labelled ``medcodec-ratecontrol`` (all candidates) or ``medcodec-nowavelet``
(``--no-wavelet``: the learned layers and the bounded-error layer only). ``--uniform``
reruns the rate targets with one count per image (what the prefixes of ``rd_medcodec.csv``
are already).
"""

from __future__ import annotations

import argparse
import csv
import sys
import tempfile
import time
from pathlib import Path

from medcodec import api, prep, ratecontrol
from medcodec.evaluate import evaluation_images, write_csv

BPP_TARGETS = (0.15, 0.25, 0.5, 1.0, 1.5)
PSNR_TARGETS = (40.0, 45.0)


def _layer(st) -> str:
    if st.transform_step is not None:
        return "wavelet"
    if st.error_bound is not None:
        return "bounded"
    return "tiles" if st.tiles else "uniform"


def run(name, modality, array, work: Path, uniform: bool, wavelet: bool, **target) -> dict:
    path = work / f"{name}.mlc"
    t0 = time.perf_counter()
    st = ratecontrol.compress_to(array, path, overwrite=True, adaptive=not uniform, wavelet=wavelet, **target)
    seconds = time.perf_counter() - t0
    decoded, _ = api.decompress(path)
    (kind, value), = target.items()
    codec = "medcodec-uniform" if uniform else "medcodec-ratecontrol" if wavelet else "medcodec-nowavelet"
    return {"image": name, "modality": modality, "codec": codec,
            "target": f"{kind}={value:g}", "layer": _layer(st), "bytes": path.stat().st_size,
            "bpp": 8.0 * path.stat().st_size / array.size, "psnr": prep.psnr(array, decoded),
            "max_error": prep.max_abs_error(array, decoded), "iterations": st.iterations,
            "error_bound": "" if st.error_bound is None else st.error_bound,
            "wavelet_step": "" if st.transform_step is None else round(st.transform_step, 4),
            "mean_tile_iterations": "" if not st.tiles else round(st.tiles["mean_iterations"], 3),
            "worst_tile_psnr": "" if not st.tiles else round(st.tiles["worst_tile_psnr"], 2),
            "encode_s": round(seconds, 2)}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default="benchmarks/results")
    p.add_argument("--images", nargs="*")
    p.add_argument("--uniform", action="store_true",
                   help="also run the rate targets with one count per image (the same points as the "
                        "prefixes of rd_medcodec.csv, so off by default)")
    p.add_argument("--bpp-targets", type=float, nargs="*", default=list(BPP_TARGETS))
    p.add_argument("--psnr-targets", type=float, nargs="*", default=list(PSNR_TARGETS))
    p.add_argument("--no-wavelet", action="store_true",
                   help="leave out the wavelet residual layer candidate (rows labelled medcodec-nowavelet)")
    p.add_argument("--merge", action="store_true",
                   help="keep the rows of an existing CSV that this run does not redo")
    args = p.parse_args(argv)
    out = Path(args.out) / "rd_adaptive.csv"
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for e, array in evaluation_images(args.images):
            for uniform in (False, True) if args.uniform else (False,):
                targets = [{"bpp": b} for b in args.bpp_targets]
                if not uniform:  # PSNR targets beyond the network take the same residual path either way
                    targets += [{"psnr": q} for q in args.psnr_targets]
                for target in targets:
                    try:
                        row = run(e.name, e.modality, array, Path(tmp), uniform, not args.no_wavelet, **target)
                    except Exception as exc:  # an out-of-reach target is a result, not a crash
                        print(f"{e.name} {target}: {exc}", file=sys.stderr)
                        continue
                    rows.append(row)
                    print(", ".join(f"{k}={v:.3f}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items()),
                          flush=True)
    if args.merge and out.exists():
        redone = {(r["image"], r["codec"], r["target"]) for r in rows}
        with open(out) as f:
            old = [r for r in csv.DictReader(line for line in f if not line.startswith("#"))
                   if (r["image"], r["codec"], r["target"]) not in redone]
        rows = old + rows
        fields = list(dict.fromkeys(k for r in rows for k in r))
        rows = [{k: r.get(k, "") for k in fields} for r in rows]
    write_csv(out, rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
