"""Throughput of ``medcodec convert`` (volumes/hour and MP/s), end to end.

Builds an archive of real images: copies of the bundled MR head volume (116x150x48 uint16,
as NIfTI, in nested folders) plus the real two-slice MR DICOM series from nibabel's test
data when installed; converts it with the shipped model on a LocalCluster of 1 and of 2
worker processes (fresh output folder each time). Timings are wall time of the whole batch:
discovery, cluster start, JAX import and compilation in every worker, reading, encoding,
verification by decoding, manifest. MP/s counts input voxels.

    python benchmarks/convert_throughput.py --volumes 8 --out benchmarks/results/convert_throughput.txt
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import tempfile
import time
from pathlib import Path


def build_archive(root: Path, volumes: int) -> Path:
    from medcodec import samples

    src = root / "archive"
    sample = Path(samples.__file__).parent / "mr_head_t1.nii.gz"
    for i in range(volumes):
        folder = src / f"patient{i // 2:03d}" / f"study{i % 2}"
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copy(sample, folder / "t1.nii.gz")
    try:
        import importlib.util

        nicom = Path(list(importlib.util.find_spec("nibabel").submodule_search_locations)[0]) / "nicom/tests/data"
        series = src / "dicom" / "mr_series"
        series.mkdir(parents=True)
        for name in ("0.dcm", "1.dcm"):
            shutil.copy(nicom / name, series / name)
    except (AttributeError, TypeError, FileNotFoundError):
        pass
    return src


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--volumes", type=int, default=8, help="copies of the MR head volume")
    ap.add_argument("--iterations", "-k", type=int, default=8)
    ap.add_argument("--model", help="model id (default: the shipped checkpoint)")
    ap.add_argument("--workers", default="1,2", help="LocalCluster sizes to measure")
    ap.add_argument("--out", help="also write the report to this file")
    args = ap.parse_args()

    from medcodec import convert
    from medcodec.options import EncodeOptions
    from medcodec.model import checkpoint

    model = args.model or f"{checkpoint.default_model_id()} (default)"
    lines = [f"medcodec convert throughput: {platform.machine()} {platform.processor() or ''}".rstrip()
             + f", {os.cpu_count()} CPU cores, Python {platform.python_version()}",
             f"model {model}, {args.iterations} iterations, verification on"]
    with tempfile.TemporaryDirectory(prefix="medcodec-bench-") as tmp:
        src = build_archive(Path(tmp), args.volumes)
        items = convert.discover(src, Path(tmp) / "probe")
        lines.append(f"archive: {len(items)} volumes ({args.volumes} x MR head 116x150x48 uint16 NIfTI"
                     f"{', 1 x MR DICOM series 2x256x256' if len(items) > args.volumes else ''})")
        lines.append(f"{'workers':>7} {'volumes':>7} {'MVoxel':>7} {'seconds':>8} {'vol/hour':>9} {'MP/s':>7} "
                     f"{'ratio':>6} {'PSNR':>6} {'load1':>5}")
        print("\n".join(lines), flush=True)
        for w in [int(x) for x in args.workers.split(",")]:
            dst = Path(tmp) / f"out{w}"
            t0 = time.perf_counter()
            summary = convert.run(src, dst, convert.ConvertOptions(encode=EncodeOptions(iterations=args.iterations, model_id=args.model)),
                                  workers=w, progress=False)
            seconds = time.perf_counter() - t0
            t = summary.totals()
            if t["failed"]:
                raise SystemExit(summary.text())
            row = (f"{summary.workers:>7} {t['converted_now']:>7} {t['voxels_now'] / 1e6:>7.2f} {seconds:>8.1f} "
                   f"{3600 * t['converted_now'] / seconds:>9.0f} {t['voxels_now'] / 1e6 / seconds:>7.3f} "
                   f"{t['raw_bytes'] / t['bytes_out']:>5.1f}:1 {t['psnr_mean']:>6.2f} {os.getloadavg()[0]:>5.2f}")
            lines.append(row)
            print(row, flush=True)
    lines.append("(wall time of the whole batch incl. cluster start and JAX compilation in each worker; "
                 "load1 = 1-minute load average after the run, >workers means other work shared the CPU)")
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
