"""Lossless and near-lossless volumes: medcodec with inter-slice prediction against intra
coding and the classical coders per slice (as DICOM stores them).

    python benchmarks/interslice_lossless.py [--out benchmarks/results]

Volumes: the development MR atlas (1.5 mm slices), the same atlas keeping every 3rd slice
(4.5 mm, thick) and nibabel's EPI (first volume, 2.2 mm). Per volume and bound E (0 =
lossless, 2): whole ``.mlc`` files from ``medcodec.compress(max_error=E)`` (the default: no
learned iterations, inter-slice prediction, key slice every 16), the same with
``interslice=False``, and with 2 learned iterations under the layer (the default before
this change); JPEG-LS per slice (near-lossless NEAR = E), and at E = 0 OpenJPEG, HTJ2K and
JPEG XL lossless per slice. Rate: bits per voxel of the bytes on disk (the classical coders:
the sum of their codestreams, no container). Every file is decoded and checked against its
bound. Decode: wall seconds of ``medcodec.decompress`` in this process after a first
decode (2 threads). Writes ``interslice_lossless.md`` and ``.csv``.
"""

from __future__ import annotations

import argparse
import csv
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import medcodec  # noqa: E402
from medcodec import evaluate  # noqa: E402

BOUNDS = (0, 2)


def volumes():
    from medcodec.data.catalog import entries
    from medcodec.data.fetch import load_volume, path_of

    _, atlas = next(evaluate.evaluation_images(["mr_head_atlas"]))
    yield "mr_head_atlas (1.5 mm)", np.ascontiguousarray(atlas)
    yield "mr_head_atlas every 3rd slice (4.5 mm)", np.ascontiguousarray(atlas[::3])
    epi = load_volume(path_of(next(e for e in entries() if e.name == "mr_epi_example4d")))
    yield "mr_epi_example4d vol 0 (2.2 mm)", np.ascontiguousarray(epi[:24].astype(np.int16))


def medcodec_rows(name, vol, e, folder):
    rows = []
    for label, kwargs in (("medcodec inter (default)", {}), ("medcodec intra", {"interslice": False}),
                          ("medcodec 2 learned iterations", {"iterations": 2})):
        path = folder / "v.mlc"
        t0 = time.perf_counter()
        stats = medcodec.compress(vol, path, max_error=e, overwrite=True, **kwargs)
        t1 = time.perf_counter()
        medcodec.decompress(path)  # first decode: compiles / loads what it needs
        t2 = time.perf_counter()
        decoded = medcodec.decompress(path)[0]
        t3 = time.perf_counter()
        worst = int(np.abs(decoded.astype(np.int64) - vol).max())
        if worst > e:
            raise SystemExit(f"{name} {label}: error {worst} > bound {e}")
        info = medcodec.info(path)
        rows.append({"volume": name, "E": e, "coder": label, "bytes": stats.bytes, "bpp": stats.bpp,
                     "inter_slices": 0 if info["interslice"] is None else info["interslice"]["inter_slices"],
                     "slices": len(vol), "encode_s": round(t1 - t0, 2), "decode_s": round(t3 - t2, 3)})
    return rows


def classical_rows(name, vol, e):
    import imagecodecs as ic

    u = (vol.astype(np.int64) - int(vol.min())).astype(np.uint16)
    coders = {"JPEG-LS per slice": (lambda s: ic.jpegls_encode(s, level=e), ic.jpegls_decode)}
    if e == 0:
        coders.update({
            "OpenJPEG lossless per slice": (lambda s: ic.jpeg2k_encode(s, level=0, reversible=True), ic.jpeg2k_decode),
            "HTJ2K lossless per slice": (lambda s: ic.htj2k_encode(s, level=0, reversible=True), ic.htj2k_decode),
            "JPEG XL lossless per slice": (lambda s: ic.jpegxl_encode(s, lossless=True, effort=7), ic.jpegxl_decode)})
    rows = []
    for label, (enc, dec) in coders.items():
        t0 = time.perf_counter()
        blobs = [enc(s) for s in u]
        t1 = time.perf_counter()
        out = np.stack([dec(b) for b in blobs])
        t2 = time.perf_counter()
        worst = int(np.abs(out.astype(np.int64) - u).max())
        if worst > e:
            raise SystemExit(f"{name} {label}: error {worst} > bound {e}")
        nbytes = sum(map(len, blobs))
        rows.append({"volume": name, "E": e, "coder": label, "bytes": nbytes, "bpp": 8.0 * nbytes / u.size,
                     "inter_slices": 0, "slices": len(u), "encode_s": round(t1 - t0, 2), "decode_s": round(t2 - t1, 3)})
    return rows


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default=str(Path(__file__).resolve().parent / "results"))
    args = p.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, vol in volumes():
            for e in BOUNDS:
                print(f"{name} {vol.shape} {vol.dtype} E={e}", flush=True)
                rows += medcodec_rows(name, vol, e, Path(tmp)) + classical_rows(name, vol, e)
    with open(out / "interslice_lossless.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    lines = ["# Lossless and near-lossless volumes: inter-slice prediction vs intra and per-slice coders", "",
             f"Machine: {evaluate.machine_description()}; `python benchmarks/interslice_lossless.py`.", "",
             "bpp from the bytes on disk (classical coders: their codestreams per slice, summed); every file "
             "decoded and checked against its bound. Relative columns: medcodec's default against each.", "",
             "| volume | E | coder | bpp | default vs this | inter slices | encode s | decode s |",
             "|---|---|---|---|---|---|---|---|"]
    for name in dict.fromkeys(r["volume"] for r in rows):
        for e in BOUNDS:
            sub = [r for r in rows if r["volume"] == name and r["E"] == e]
            mine = next(r for r in sub if r["coder"] == "medcodec inter (default)")
            for r in sub:
                rel = "" if r is mine else f"{100 * (mine['bytes'] / r['bytes'] - 1):+.1f} %"
                lines.append(f"| {name} | {e} | {r['coder']} | {r['bpp']:.3f} | {rel} | {r['inter_slices']}/{r['slices']} "
                             f"| {r['encode_s']} | {r['decode_s']} |")
    lines += ["", "Per row: `interslice_lossless.csv`."]
    (out / "interslice_lossless.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
