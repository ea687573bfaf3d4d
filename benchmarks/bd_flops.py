"""BD-rate against JPEG 2000 versus decode FLOPs per pixel, for the configurations measured.

    python benchmarks/bd_flops.py      # after rd_medcodec.py, classical.py, rd_adaptive.py

One point per image and configuration: y is the BD-rate against JPEG 2000 over the common
PSNR range (``rd_compare.bd_rate``), x the decode FLOPs per pixel at 1 bpp (interpolated in
log rate between the configuration's measured points): learned iterations run times the
decoder's FLOPs per pixel per iteration (``flops_per_pixel``), plus the inverse wavelet
transform where the file has the wavelet layer. Configurations, all with the shipped
checkpoint's architecture (the only one trained to convergence):

- ``uniform``: every slice runs every stored iteration (``rd_medcodec.csv``);
- ``tiles``: adaptive tiles, learned layers only (``rd_adaptive.csv``, rows
  ``medcodec-nowavelet`` without an error bound). The decoder runs each batch of slices up
  to its largest tile count (filled marker: the file's largest count, exact for a single
  slice and an upper bound for the MR volume, whose batches stop earlier); the hollow marker
  is the mean tile count, what a decoder that skipped finished tiles would spend;
- ``rate control``: whatever ``--bpp``/``--psnr`` chose (``medcodec-ratecontrol`` rows:
  the wavelet layer over 0 or 1 learned iterations).

Other widths (half, double, Toderici 2017) were timed (``results/cpu_speed_configs.txt``)
but never trained, so they have FLOPs and no rate-distortion curve; they are listed, not
plotted. Writes ``bd_flops.md`` and ``bd_flops.png``.
"""

from __future__ import annotations

import csv
import math
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

from rd_compare import bd_rate, load  # noqa: E402

from medcodec.coding import wavelet  # noqa: E402
from medcodec.model import checkpoint  # noqa: E402
from medcodec.model.config import flops_per_pixel  # noqa: E402

SHAPES = {"mr_head_atlas": (150, 116), "ct_abdomen_vrun": (512, 512), "cr_chest_rg1": (1955, 1841),
          "mr_shoulder_mr2": (1024, 1024)}  # slice sizes: the wavelet's levels depend on them


def wavelet_flops(height: int, width: int) -> float:
    """Inverse CDF 9/7 FLOPs per pixel: per 1D pass 4 lifting steps over half the samples
    (3 FLOPs each) and one scaling, two passes per level, each level a quarter of the last;
    plus dequantisation and the add to the base (about 4)."""
    per_level = 2 * (4 * 0.5 * 3 + 1)
    return per_level * sum(0.25**j for j in range(wavelet.levels_for(height, width))) + 4.0


def rows(name: str) -> list[dict]:
    path = HERE / "results" / name
    with open(path) as f:
        return list(csv.DictReader(line for line in f if not line.startswith("#")))


def flops_at_1bpp(points: list[tuple[float, float]]) -> float:
    """(bpp, FLOPs/px) points -> FLOPs at 1 bpp, linear in log rate (nearest end outside)."""
    points = sorted(points)
    return float(np.interp(0.0, [math.log(b) for b, _ in points], [f for _, f in points]))


def measured(decoder: float) -> dict:
    """{config: {image: [(bpp, FLOPs/px)]}} from the result CSVs."""
    out: dict = defaultdict(lambda: defaultdict(list))
    for r in rows("rd_medcodec.csv"):
        out["uniform"][r["image"]].append((float(r["bpp"]), int(r["iterations"]) * decoder))
    for r in rows("rd_adaptive.csv"):
        bpp, image = float(r["bpp"]), r["image"]
        if r["codec"] == "medcodec-nowavelet" and not r["error_bound"]:
            out["tiles"][image].append((bpp, int(r["iterations"]) * decoder))
            mean = float(r["mean_tile_iterations"] or r["iterations"])
            out["tiles (finished tiles skipped)"][image].append((bpp, mean * decoder))
        elif r["codec"] == "medcodec-ratecontrol":
            out["rate control"][image].append((bpp, int(r["iterations"]) * decoder + wavelet_flops(*SHAPES[image])))
    return out


def main() -> int:
    model = checkpoint.load(None)
    decoder = flops_per_pixel(model.config)["decoder"]
    curves = load(HERE / "results")
    by_config = measured(decoder)
    rd_name = {"uniform": "medcodec", "tiles": "medcodec-tiles", "tiles (finished tiles skipped)": "medcodec-tiles",
               "rate control": "medcodec-ratecontrol"}
    table = [f"Decoder of {model.model_id}: {decoder / 1e3:.1f} kFLOP per pixel per iteration.", "",
             "| image | configuration | decode kFLOP/px at 1 bpp | BD-rate vs JPEG 2000 |", "|---|---|---|---|"]
    points: dict = defaultdict(list)  # config -> [(image, flops, bd)]
    for config, images in by_config.items():
        for image, pts in images.items():
            bd = bd_rate(curves[image].get("jpeg2000", []), curves[image].get(rd_name[config], []))
            fl = flops_at_1bpp(pts)
            points[config].append((image, fl, bd))
            table.append(f"| {image} | {config} | {fl / 1e3:.3g} | {'-' if math.isnan(bd) else f'{bd:+.1f} %'} |")
    table += ["", "Timed but not trained (FLOPs only, `results/cpu_speed_configs.txt`): half width 6.7, "
              "double width 107.5, Toderici 2017 widths 549.1 kFLOP/px per decoded iteration."]
    text = "\n".join(table)
    print(text)
    (HERE / "results" / "bd_flops.md").write_text(text + "\n")

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    markers = {"mr_head_atlas": "o", "ct_abdomen_vrun": "s", "cr_chest_rg1": "^", "mr_shoulder_mr2": "D"}
    colours = {"uniform": "tab:red", "tiles": "tab:orange", "tiles (finished tiles skipped)": "tab:orange",
               "rate control": "tab:blue"}
    for config, pts in points.items():
        hollow = "skipped" in config
        for image, fl, bd in pts:
            if math.isfinite(bd):
                ax.scatter(fl, bd, marker=markers.get(image, "o"), s=36, color=colours[config],
                           facecolors="none" if hollow else colours[config])
        ax.scatter([], [], color=colours[config], facecolors="none" if hollow else colours[config], label=config)
    for image, m in markers.items():
        ax.scatter([], [], marker=m, color="grey", label=image)
    ax.axhline(0, color="k", lw=0.8)
    ax.set_xscale("log")
    ax.set_xlabel("decode FLOPs per pixel at 1 bpp (network + inverse wavelet)")
    ax.set_ylabel("BD-rate vs JPEG 2000 (%)")
    ax.set_title(f"{model.model_id}: rate vs decode cost", fontsize=10)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(HERE / "results" / "bd_flops.png", dpi=110)
    return 0


if __name__ == "__main__":
    sys.exit(main())
