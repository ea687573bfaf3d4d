"""Inter-slice prediction (medcodec.coding.interslice) against intra coding and OpenJPEG.

    python benchmarks/interslice.py [--out benchmarks/results]

Volumes: the development MR atlas (1.5 mm slices, thin), the same atlas keeping every 3rd
slice (4.5 mm spacing: a thick-slice series with real anatomy), and nibabel's EPI (first
volume, 2.2 mm). Per volume and quantiser step: the wavelet layer coding every slice alone
over the constant base ("intra": what rate control writes at these rates), the same with
inter-slice prediction (per-slice intra/inter switch, key slice every N = 8, 16, 32), and
OpenJPEG coding each slice alone (as DICOM does). Rate: bits per voxel of the coded bytes
plus the container's per-slice framing (33 bytes, as the XRES chunk and its index entry
take; inter also pays 1 mode byte and 1 weight byte per band); quality: PSNR over the
volume's range. BD-rates over 40-55 dB (piecewise linear, ``rd_compare.bd_rate``). Writes
``interslice.md``, ``interslice.csv`` and ``interslice.png``.
"""

from __future__ import annotations

import argparse
import csv
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from medcodec import evaluate, prep  # noqa: E402
from medcodec.coding import interslice  # noqa: E402
from rd_compare import bd_rate  # noqa: E402

DELTAS = (12, 16, 24, 32, 48, 64, 96, 128, 192)
KEYS = (8, 16, 32)
FRAMING = 33  # bytes per slice: XRES chunk header/CRC, its prefix, its XIDX entry
J2K_PSNR = tuple(range(36, 60, 2))  # OpenJPEG's target PSNR sweep


def volumes():
    from medcodec.data.catalog import entries
    from medcodec.data.fetch import load_volume, path_of

    _, atlas = next(evaluate.evaluation_images(["mr_head_atlas"]))
    yield "mr_head_atlas (1.5 mm)", atlas
    yield "mr_head_atlas every 3rd slice (4.5 mm)", np.ascontiguousarray(atlas[::3])
    epi = load_volume(path_of(next(e for e in entries() if e.name == "mr_epi_example4d")))
    yield "mr_epi_example4d vol 0 (2.2 mm)", epi[:24].astype(np.int16)


def medcodec_rows(name, vol):
    window = prep.window_of(vol)
    bases = np.full(vol.shape, interslice._mid(window, vol.dtype), vol.dtype)
    rows = []
    for delta in DELTAS:
        for label, key, inter in [("intra", 0, False)] + [(f"inter N={k}", k, True) for k in KEYS]:
            t0 = time.perf_counter()
            records, finals = interslice.encode_volume(vol, bases, delta, window, key, inter=inter)
            t1 = time.perf_counter()
            decoded = interslice.decode_volume(bases, records, delta, window)
            t2 = time.perf_counter()
            if not np.array_equal(decoded, finals):
                raise SystemExit(f"{name} {label} delta {delta}: decode differs from the encoder's slices")
            side = (1 + len(records[0].weights)) * len(records) if inter else 0
            nbytes = sum(len(r.record[1]) + FRAMING for r in records) + side
            rows.append({"volume": name, "coder": label, "param": delta, "bytes": nbytes,
                         "bpp": 8.0 * nbytes / vol.size, "psnr": prep.psnr(vol, decoded),
                         "inter_slices": sum(r.mode for r in records), "slices": len(records),
                         "encode_s": t1 - t0, "decode_s": t2 - t1})
    return rows


def openjpeg_rows(name, vol):
    import imagecodecs as ic

    u = (vol.astype(np.int64) - int(vol.min())).astype(np.uint16)
    bits = max(8, int(np.ceil(np.log2(int(u.max()) + 1))))
    rows = []
    for target in J2K_PSNR:
        t0 = time.perf_counter()
        blobs = [ic.jpeg2k_encode(s, level=target, bitspersample=bits) for s in u]
        t1 = time.perf_counter()
        out = np.stack([ic.jpeg2k_decode(b) for b in blobs])
        t2 = time.perf_counter()
        nbytes = sum(map(len, blobs))
        rows.append({"volume": name, "coder": "openjpeg per slice", "param": target, "bytes": nbytes,
                     "bpp": 8.0 * nbytes / u.size, "psnr": prep.psnr(u, out), "inter_slices": 0,
                     "slices": len(u), "encode_s": t1 - t0, "decode_s": t2 - t1})
    return rows


def curve(rows, coder, lo=40.0, hi=55.0):
    """(bpp, psnr) points of a coder, monotone, with one point beyond each end of [lo, hi]."""
    pts = sorted((r["bpp"], r["psnr"]) for r in rows if r["coder"] == coder)
    mono, best = [], -np.inf
    for b, q in pts:
        if q > best:
            mono.append((b, q))
            best = q
    below = [p for p in mono if p[1] < lo][-1:]
    above = [p for p in mono if p[1] > hi][:1]
    return below + [p for p in mono if lo <= p[1] <= hi] + above


def clipped_bd(ref, test, lo=40.0, hi=55.0):
    """BD-rate over the common range of the two curves intersected with [lo, hi]."""
    def clip(pts):
        qs = [q for _, q in pts]
        grid = [q for q in np.linspace(max(lo, min(qs)), min(hi, max(qs)), 64)]
        logs = np.interp(grid, qs, [np.log(b) for b, _ in pts])
        return [(float(np.exp(lr)), float(q)) for lr, q in zip(logs, grid)]
    return bd_rate(clip(ref), clip(test))


def plot(rows, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(dict.fromkeys(r["volume"] for r in rows))
    fig, axes = plt.subplots(1, len(names), figsize=(5.5 * len(names), 4.2))
    for ax, name in zip(np.atleast_1d(axes), names):
        sub = [r for r in rows if r["volume"] == name]
        for coder in dict.fromkeys(r["coder"] for r in sub):
            pts = sorted((r["bpp"], r["psnr"]) for r in sub if r["coder"] == coder)
            ax.plot(*zip(*pts), marker=".", label=coder)
        ax.set_xscale("log")
        ax.set_ylim(36, 60)
        ax.set_xlabel("bits per voxel (bytes on disk)")
        ax.set_ylabel("PSNR (dB, volume range)")
        ax.set_title(name, fontsize=9)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default=str(Path(__file__).resolve().parent / "results"))
    args = p.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for name, vol in volumes():
        print(f"{name}: {vol.shape} {vol.dtype}", flush=True)
        rows += medcodec_rows(name, vol) + openjpeg_rows(name, vol)
    with open(out / "interslice.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    lines = ["# Inter-slice prediction vs intra and OpenJPEG", "",
             f"Machine: {evaluate.machine_description()}; `python benchmarks/interslice.py`.", "",
             "BD-rate over 40-55 dB (negative: fewer bits for the same PSNR):", "",
             "| volume | coder | vs OpenJPEG per slice | vs medcodec intra | inter slices | encode s | decode s |",
             "|---|---|---|---|---|---|---|"]
    for name in dict.fromkeys(r["volume"] for r in rows):
        sub = [r for r in rows if r["volume"] == name]
        j2k, intra = curve(sub, "openjpeg per slice"), curve(sub, "intra")
        for coder in dict.fromkeys(r["coder"] for r in sub):
            if coder == "openjpeg per slice":
                continue
            mine = [r for r in sub if r["coder"] == coder]
            at = next(r for r in mine if r["param"] == 64)
            lines.append(f"| {name} | {coder} | {clipped_bd(j2k, curve(sub, coder)):+.1f} % | "
                         f"{clipped_bd(intra, curve(sub, coder)):+.1f} % | {at['inter_slices']}/{at['slices']} "
                         f"(step 64) | {at['encode_s']:.2f} | {at['decode_s']:.2f} |")
    lines += ["", "Per point: `interslice.csv`; curves: `interslice.png`."]
    (out / "interslice.md").write_text("\n".join(lines) + "\n")
    plot(rows, out / "interslice.png")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
