"""How many learned iterations should lie under the bounded-error residual layer?

    python benchmarks/lossless_base.py            # -> benchmarks/results/lossless_base.{csv,md}
    python benchmarks/lossless_base.py --images ct_abdomen_vrun --ks 1 2 --bounds 0

Lossless and near-lossless files are ``k`` learned iterations (the base) plus a
context-coded residual layer that bounds |decoded - original| <= E. k = 0 (no learned
iterations: the window's middle as base) is the default of the library, the command line
and the SimpleITK writer since this benchmark measured it smallest on every image (before:
k = 2). k = 0 rows are coded intra (``interslice=False``) like the others, so only the base
differs; ``benchmarks/interslice_lossless.py`` measures inter-slice prediction. For each development image (catalog role "eval", loaded as
the other benchmarks load them), each E and each k this encodes with
``medcodec.compress(array, path, iterations=k, max_error=E)``, measures the file's bytes on
disk (bpp = 8 * bytes / voxels), decodes it with ``medcodec.decompress`` and checks the bound
(bit-exact at E = 0), and times encode and decode (wall clock, after a warm-up encode and
decode of the same image and k without the residual layer, so XLA compilation is not
counted). The Markdown names the k with the smallest files per image and bound, and the
bpp difference of every k against k = 2 and k = 8.

Uses only the public API (``medcodec.compress``/``decompress``/``info``,
``medcodec.evaluate.evaluation_images``/``machine_description``).
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

import medcodec
from medcodec.data.catalog import entries
from medcodec.evaluate import evaluation_images, machine_description

KS = (0, 1, 2, 4, 8)
BOUNDS = (0, 2)
FIELDS = ["image", "shape", "max_error", "base_iterations", "bytes", "bpp", "measured_max_error",
          "bit_exact", "encode_s", "decode_s"]


def _max_abs_error(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.max(np.abs(a.astype(np.float64) - b.astype(np.float64))))


def _write_csv(path: Path, machine: str, rows: list[dict]) -> None:
    tmp = path.with_suffix(".csv.part")
    with open(tmp, "w", newline="") as f:
        f.write(f"# {machine}\n")
        w = csv.DictWriter(f, fieldnames=FIELDS)
        w.writeheader()
        w.writerows(rows)
    os.replace(tmp, path)


def _read_csv(path: Path) -> list[dict]:
    """Rows of an earlier (partial) run, typed as :func:`measure` makes them."""
    with open(path, newline="") as f:
        rows = list(csv.DictReader(line for line in f if not line.startswith("#")))
    types = {"max_error": int, "base_iterations": int, "bytes": int, "bpp": float,
             "measured_max_error": float, "bit_exact": lambda v: v == "True", "encode_s": float,
             "decode_s": float}
    return [{k: types.get(k, str)(v) for k, v in r.items()} for r in rows]


def measure(name: str, array: np.ndarray, ks, bounds, work: Path, done=(), on_row=None) -> list[dict]:
    """Rows for every (k, E) of one image, except those in ``done`` ({(k, E)})."""
    rows = []
    for k in ks:
        todo = [e for e in bounds if (k, e) not in done]
        if not todo:
            continue
        warm = work / f"{name}_warm.mlc"  # compile the encoder and decoder for this shape and k
        medcodec.compress(array, warm, iterations=max(k, 1), overwrite=True)
        medcodec.decompress(warm)
        for e in todo:
            path = work / f"{name}_k{k}_e{e}.mlc"
            t0 = time.perf_counter()
            base = {"iterations": k} if k else {"interslice": False}  # k = 0: the default base, intra
            medcodec.compress(array, path, max_error=e, overwrite=True, **base)
            t1 = time.perf_counter()
            decoded, _ = medcodec.decompress(path)
            t2 = time.perf_counter()
            nbytes = os.path.getsize(path)
            err = _max_abs_error(array, decoded)
            if err > e or (e == 0 and not np.array_equal(array, decoded)):
                raise AssertionError(f"{name} k={k} E={e}: decoded max error {err}")
            info = medcodec.info(path)
            learned = info["iterations"] if k else info["tile_iterations"][1]
            assert learned == k and info["max_error"] == e, info
            row = {"image": name, "shape": "x".join(map(str, array.shape)), "max_error": e,
                   "base_iterations": k, "bytes": nbytes, "bpp": round(8.0 * nbytes / array.size, 4),
                   "measured_max_error": err, "bit_exact": bool(np.array_equal(array, decoded)),
                   "encode_s": round(t1 - t0, 2), "decode_s": round(t2 - t1, 2)}
            rows.append(row)
            print("  ".join(f"{key}={row[key]}" for key in FIELDS), flush=True)
            if on_row:
                on_row(row)
            path.unlink()
    return rows


def _table(rows: list[dict]) -> str:
    lines = ["| image | E | k | bytes | bpp | vs k=2 | vs k=8 | encode s | decode s |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        ref = {x["base_iterations"]: x["bpp"] for x in rows
               if x["image"] == r["image"] and x["max_error"] == r["max_error"]}
        d2 = "" if 2 not in ref else f"{100 * (r['bpp'] / ref[2] - 1):+.2f} %"
        d8 = "" if 8 not in ref else f"{100 * (r['bpp'] / ref[8] - 1):+.2f} %"
        lines.append(f"| {r['image']} | {r['max_error']} | {r['base_iterations']} | {r['bytes']} | "
                     f"{r['bpp']:.4f} | {d2} | {d8} | {r['encode_s']} | {r['decode_s']} |")
    return "\n".join(lines)


def _cases(rows: list[dict]) -> list[tuple[str, int, dict]]:
    """(image, E, {k: row}) in the rows' order."""
    keys = list(dict.fromkeys((r["image"], r["max_error"]) for r in rows))
    return [(i, e, {r["base_iterations"]: r for r in rows if (r["image"], r["max_error"]) == (i, e)})
            for i, e in keys]


def _conclusion(rows: list[dict]) -> list[str]:
    out, wins = [], {}
    for image, e, pts in _cases(rows):
        best = min(pts.values(), key=lambda r: r["bytes"])
        k = best["base_iterations"]
        wins.setdefault(k, []).append(f"{image} E={e}")
        parts = [f"k={k}: {best['bpp']:.4f} bpp"]
        for ref in (2, 8):
            if ref in pts and ref != k:
                diff = best["bpp"] - pts[ref]["bpp"]
                parts.append(f"{diff:+.4f} bpp ({100 * diff / pts[ref]['bpp']:+.2f} %) vs k={ref}")
        out.append(f"- {image}, E={e}: smallest with " + ", ".join(parts))
    # overall, per bound and in all: bytes summed over the images (the large CR weighs most)
    # and the mean of the images' bpp (every image alike)
    for e in sorted({r["max_error"] for r in rows}) + [None]:
        sel = [r for r in rows if e is None or r["max_error"] == e]
        cases = {(r["image"], r["max_error"]) for r in sel}
        totals = {}
        for k in sorted({r["base_iterations"] for r in sel}):
            ks = [r for r in sel if r["base_iterations"] == k]
            if {(r["image"], r["max_error"]) for r in ks} == cases:  # only ks measured on every case
                totals[k] = (sum(r["bytes"] for r in ks), float(np.mean([r["bpp"] for r in ks])))
        if not totals:
            continue
        by_bytes = min(totals, key=lambda k: totals[k][0])
        by_mean = min(totals, key=lambda k: totals[k][1])
        label = "all bounds" if e is None else f"E={e}"
        extra = ", ".join(f"k={k}: {b} B, mean {m:.4f} bpp" for k, (b, m) in totals.items())
        out.append(f"- overall ({label}): smallest total bytes with k={by_bytes}, smallest mean bpp "
                   f"with k={by_mean} ({extra})")
    out.append("- k with the smallest file, by count: "
               + "; ".join(f"k={k}: {len(v)} ({', '.join(v)})" for k, v in sorted(wins.items())))
    return out


def _summary(rows: list[dict]) -> str:
    """One data-driven paragraph: which k wins, and by how much against the defaults."""
    cases = [c for c in _cases(rows) if {0, 1, 2} <= set(c[2])]
    if not cases:
        return ""
    d02 = [100 * (pts[0]["bpp"] / pts[2]["bpp"] - 1) for _, _, pts in cases]
    d01 = [100 * (pts[0]["bpp"] / pts[1]["bpp"] - 1) for _, _, pts in cases]
    winners = sorted({min(pts.values(), key=lambda r: r["bytes"])["base_iterations"] for _, _, pts in cases})
    return (f"Over {len(cases)} cases (image x E) the smallest file has k in {winners}. k = 0 (the "
            f"default) is {min(d02):+.2f} to {max(d02):+.2f} % against k = 2 (the default before) and "
            f"{min(d01):+.2f} to {max(d01):+.2f} % against k = 1.")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default=str(Path(__file__).resolve().parent / "results"))
    p.add_argument("--images", nargs="*", help="catalog names (default: every eval image)")
    p.add_argument("--ks", type=int, nargs="*", default=list(KS))
    p.add_argument("--bounds", type=int, nargs="*", default=list(BOUNDS))
    p.add_argument("--note", help="a line added to the Markdown (e.g. how the rows were run)")
    p.add_argument("--resume", action="store_true",
                   help="keep the rows of an existing lossless_base.csv (written row by row) and "
                        "measure only the missing ones")
    args = p.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    csv_path = out / "lossless_base.csv"
    machine = machine_description()
    load_before = os.getloadavg()[0]
    print(f"# {machine}; load average {load_before:.2f}", flush=True)
    rows = _read_csv(csv_path) if args.resume and csv_path.exists() else []
    started, per_image = time.perf_counter(), {}

    def keep(row):
        rows.append(row)
        _write_csv(csv_path, machine, rows)

    # images in the order asked for (the catalog's order by default)
    names = args.images or [e.name for e in entries("eval")]
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            done = {(r["base_iterations"], r["max_error"]) for r in rows if r["image"] == name}
            if all((k, e) in done for k in args.ks for e in args.bounds):
                continue
            (entry, array), = evaluation_images([name])
            t0 = time.perf_counter()
            print(f"{entry.name}: {array.shape} {array.dtype}", flush=True)
            measure(entry.name, array, args.ks, args.bounds, Path(tmp), done=done, on_row=keep)
            per_image[entry.name] = time.perf_counter() - t0
    total = time.perf_counter() - started
    order = {n: i for i, n in enumerate(names)}
    rows = sorted((r for r in rows if r["image"] in order and r["base_iterations"] in args.ks
                   and r["max_error"] in args.bounds),
                  key=lambda r: (order[r["image"]], r["max_error"], r["base_iterations"]))
    _write_csv(csv_path, machine, rows)
    md = [f"# Base iterations under the bounded-error layer ({machine})", "",
          "`python benchmarks/lossless_base.py`: every development image coded with "
          "`medcodec.compress(array, path, iterations=k, max_error=E)` (k = 0: no iterations named, "
          "`interslice=False`); bpp from the bytes on disk, "
          "every file decoded and its bound checked (bit-exact at E = 0). Encode and decode are wall "
          "seconds after a warm-up of the same shape and k (no compilation counted), residual layers "
          "on the default threads. k = 0 (no learned iterations, coded intra here) is the default of the "
          "library, the CLI and the SimpleITK writer; before it was k = 2.", "",
          _table(rows), "", "## Conclusion", "", _summary(rows), "", *_conclusion(rows), "",
          *([args.note, ""] if args.note else []),
          (f"Run time of this invocation: {total:.0f} s (" + ", ".join(f"{n} {s:.0f} s" for n, s in per_image.items())
           + (", resumed from an earlier partial run" if args.resume else "") + "); "
           f"1-minute load average {load_before:.2f} at the start, {os.getloadavg()[0]:.2f} at the end "
           "(times are wall clock: other work on the machine slows them, file sizes do not change)."
           if per_image else "Every row was read from lossless_base.csv (`--resume`); nothing was "
           "measured by the invocation that wrote this file."), ""]
    (out / "lossless_base.md").write_text("\n".join(md))
    print("\n" + _table(rows) + "\n\n" + _summary(rows) + "\n" + "\n".join(_conclusion(rows)))
    print(f"\nwrote {csv_path} and {out / 'lossless_base.md'} ({total:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
