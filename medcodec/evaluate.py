"""Rate-distortion and speed evaluation of a model on the development evaluation images.

``python -m medcodec.evaluate --out benchmarks/results`` encodes every development image
(never trained on) with the maximum iteration count, derives the file of every shorter
count by truncation (exactly what encoding with fewer iterations writes), and measures for
each count: bpp from the bytes on disk, PSNR (peak = image max - min) and max error of the
really decoded image. It also times encode and decode of a 512x512 slice. Results: a CSV,
a JSON summary and a PNG plot.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from . import api, prep
from .format import truncate


def cpu_model() -> str:
    """The processor's name and widest vector unit, e.g. "AMD EPYC (avx512)": CPU timings
    differ between hosts of one name, and AVX-512 is the usual reason."""
    name, flags = platform.processor() or platform.machine(), set()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key.strip() == "model name":
                    name = value.strip()
                elif key.strip() == "flags":
                    flags = set(value.split())
                    break
    except OSError:
        pass
    isa = next((x for x in ("avx512f", "avx2", "neon", "asimd") if x in flags), None)
    return f"{name} ({isa.replace('avx512f', 'avx512')})" if isa else name


def machine_description() -> str:
    import os

    from .model.runtime import backend_description

    return f"{platform.machine()} {cpu_model()}, {os.cpu_count()} cores, {backend_description()}"


def write_csv(path: Path, rows: list[dict]) -> None:
    """Benchmark rows to a CSV whose first line (``# ...``) says which machine measured them."""
    import csv

    with open(path, "w", newline="") as f:
        f.write(f"# {machine_description()}\n")
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    print(f"wrote {path}")


def rd_curve(name: str, modality: str, array: np.ndarray, max_iterations: int, workdir: Path,
             model_id: str | None = None) -> list[dict]:
    """One row per iteration count: bpp, PSNR, max error of the decoded image."""
    full = workdir / f"{name}_k{max_iterations}.mlc"
    api.compress(array, full, iterations=max_iterations, model_id=model_id, overwrite=True)
    rows = []
    for k in range(1, max_iterations + 1):
        path = full if k == max_iterations else workdir / f"{name}_k{k}.mlc"
        if k < max_iterations:
            truncate(full, path, k, overwrite=True)
        decoded, _ = api.decompress(path)
        nbytes = path.stat().st_size
        rows.append({"image": name, "modality": modality, "iterations": k, "bytes": nbytes,
                     "bpp": 8.0 * nbytes / array.size, "psnr": prep.psnr(array, decoded),
                     "max_error": prep.max_abs_error(array, decoded), "voxels": int(array.size)})
    return rows


def psnr_at(rows: list[dict], bpp: float) -> float:
    """PSNR at a target rate by linear interpolation between measured points (NaN outside)."""
    xs = [r["bpp"] for r in rows]
    ys = [r["psnr"] for r in rows]
    if not xs[0] <= bpp <= xs[-1]:
        return math.nan
    return float(np.interp(bpp, xs, ys))


def time_slice(array2d: np.ndarray, iterations: int, workdir: Path, repeats: int = 3,
               model_id: str | None = None) -> dict:
    """Warm (compiled) encode and decode seconds for one 2D slice; best of ``repeats``."""
    path = workdir / "timing.mlc"
    api.compress(array2d, path, iterations=iterations, model_id=model_id, overwrite=True)  # compile
    api.decompress(path)
    enc, dec = [], []
    for _ in range(repeats):
        t0 = time.perf_counter()
        stats = api.compress(array2d, path, iterations=iterations, model_id=model_id, overwrite=True)
        t1 = time.perf_counter()
        api.decompress(path)
        t2 = time.perf_counter()
        enc.append(t1 - t0)
        dec.append(t2 - t1)
    return {"shape": list(array2d.shape), "iterations": iterations, "bpp": stats.bpp,
            "encode_s": min(enc), "decode_s": min(dec)}


def plot(rows: list[dict], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for name in dict.fromkeys(r["image"] for r in rows):
        pts = [r for r in rows if r["image"] == name]
        ax.plot([r["bpp"] for r in pts], [r["psnr"] for r in pts], marker="o", ms=3,
                label=f"{name} ({pts[0]['modality']})")
    ax.set_xlabel("bits per pixel (from file size)")
    ax.set_ylabel("PSNR (dB, peak = image max - min)")
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def evaluation_images(names=None):
    """Yield (catalog entry, array) for the development evaluation images: integer-valued
    volumes as int16/uint16 (the atlas is float32 holding 0..3517), 2D images as 2D."""
    from .data.catalog import entries
    from .data.fetch import load_volume, path_of

    for e in entries("eval"):
        if names and e.name not in names:
            continue
        vol = load_volume(path_of(e))
        if np.all(vol == np.round(vol)) and vol.min() >= -32768 and vol.max() <= 65535:
            vol = vol.astype(np.int16 if vol.min() < 0 else np.uint16)
        yield e, (vol[0] if vol.shape[0] == 1 else vol)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m medcodec.evaluate", description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default="benchmarks/results", help="output folder")
    p.add_argument("--model", help="model id (default: the shipped checkpoint)")
    p.add_argument("--iterations", type=int, help="maximum iterations (default: the model's)")
    p.add_argument("--images", nargs="*", help="subset of evaluation image names")
    args = p.parse_args(argv)

    from .model import checkpoint

    model = checkpoint.load(args.model)
    kmax = args.iterations or model.config.max_iterations
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rows, timing = [], None
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for e, array in evaluation_images(args.images):
            t0 = time.perf_counter()
            rows += rd_curve(e.name, e.modality, array, kmax, work, model.model_id)
            print(f"{e.name}: {array.shape} {array.dtype} done in {time.perf_counter() - t0:.0f} s",
                  file=sys.stderr)
            if array.shape == (512, 512) and timing is None:
                timing = time_slice(array, 8, work, model_id=model.model_id)
    with open(out / "rd_medcodec.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    summary = {"model_id": model.model_id, "machine": machine_description(), "timing_512": timing,
               "images": {}}
    for name in dict.fromkeys(r["image"] for r in rows):
        pts = [r for r in rows if r["image"] == name]
        by_k = {r["iterations"]: r["psnr"] for r in pts}
        summary["images"][name] = {
            "modality": pts[0]["modality"],
            "psnr_at_bpp": {str(b): psnr_at(pts, b) for b in (0.25, 0.5, 1.0, 2.0)},
            "psnr_at_iterations": {str(k): by_k[k] for k in (1, 2, 4, 8, 12, 16) if k in by_k},
            "db_gained_by_iteration": {str(k): by_k[k] - by_k[k - 1] for k in (4, 8, 12, 16) if k in by_k},
            "bpp_at_iterations": {str(r["iterations"]): r["bpp"] for r in pts},
        }
    (out / "rd_medcodec.json").write_text(json.dumps(summary, indent=1))
    plot(rows, out / "rd_medcodec.png", f"medcodec {model.model_id} on the development set ({summary['machine']})")
    print(json.dumps(summary, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
