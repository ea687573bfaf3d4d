"""Byte identity of medcodec's output: prove that a refactor changed no encoded or decoded byte.

Encodes the four development evaluation images (catalog role "eval", native integer dtype,
as the benchmarks load them) with fixed-iteration, bounded-error, lossless and rate-control
settings, and records for every case the SHA-256 and size of the ``.mlc`` file and the
SHA-256, dtype and shape of the decoded array; it also reads the golden files
``tests/data/golden_v1*.mlc`` of this script's checkout (header facts via ``medcodec.info``;
their model "test-00000000" is not installed, so they do not decode) and hashes the input
images. A CT case goes through ``medcodec.write`` (SimpleITK geometry and metadata). Only
the public API is used (``medcodec.compress / write / decompress / info``,
``medcodec.ratecontrol.compress_to``, ``medcodec.data``), so one script runs before and after.

    # before the refactor: the old code (a git worktree at /tmp/baseline), this script and
    # its output in the working checkout $REPO:
    cd /tmp/baseline && PYTHONPATH=/tmp/baseline python $REPO/benchmarks/byte_identity.py \\
        --out $REPO/benchmarks/results/byte_identity/baseline.json
    # after it (new code, in $REPO):
    python benchmarks/byte_identity.py --out after.json \\
        --compare benchmarks/results/byte_identity/baseline.json
    # compare a file already written, without encoding again:
    python benchmarks/byte_identity.py --out after.json --reuse --compare .../baseline.json

``--list`` prints the case names, ``--only SUBSTRING`` runs the matching ones, ``--no-full``
leaves out the slow CR chest rate-control case. ``--compare`` prints identical / DIFFERENT
per case and exits 1 on any difference (or a case missing or failed). Hashes are only
comparable on the same machine and JAX version (both are recorded).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import sys
import tempfile
import time
import traceback
from pathlib import Path

import numpy as np

GOLDEN = Path(__file__).resolve().parents[1] / "tests" / "data"
BASIC = [("iterations=8", {"iterations": 8}),
         ("iterations=2,max_error=2", {"iterations": 2, "max_error": 2}),
         ("iterations=2,max_error=0", {"iterations": 2, "max_error": 0})]
RATE = [("psnr=45", {"psnr": 45}), ("bpp=0.5", {"bpp": 0.5}), ("ratio=10", {"ratio": 10}),
        ("psnr=40,roi=auto", {"psnr": 40, "roi": "auto"}),
        ("bpp=1.0,wavelet=False", {"bpp": 1.0, "wavelet": False}),
        ("bpp=0.5,adaptive=False", {"bpp": 0.5, "adaptive": False}),
        ("psnr=45,iterations=8", {"psnr": 45, "iterations": 8})]


def cases(full: bool) -> list[tuple[str, str, str, dict]]:
    """(case name, image name, "compress" | "rate" | "write", keyword arguments), in run order."""
    out = []
    for image in ("ct_abdomen_vrun", "mr_shoulder_mr2", "mr_head_atlas", "cr_chest_rg1"):
        out += [(f"{image}/{n}", image, "compress", kw) for n, kw in BASIC]
        if image in ("ct_abdomen_vrun", "mr_shoulder_mr2"):
            out += [(f"{image}/{n}", image, "rate", kw) for n, kw in RATE]
        if image == "ct_abdomen_vrun":  # geometry and metadata: a SimpleITK image via medcodec.write
            out.append((f"{image}/write-sitk,iterations=4", image, "write", {"iterations": 4}))
        elif image == "mr_head_atlas":
            out.append((f"{image}/psnr=45", image, "rate", {"psnr": 45}))
    if full:  # slow (1955x1841): last
        out.append(("cr_chest_rg1/psnr=45", "cr_chest_rg1", "rate", {"psnr": 45}))
    return out


def sha(data) -> str:
    return hashlib.sha256(data).hexdigest()


def array_record(a: np.ndarray) -> dict:
    a = np.ascontiguousarray(a)
    return {"array_sha256": sha(a.tobytes()), "dtype": str(a.dtype), "shape": list(a.shape)}


def load_image(name: str) -> np.ndarray:
    """An evaluation image as the benchmarks load it: integer-valued volumes as int16/uint16
    (the atlas is float32 holding 0..3517), 2D images as 2D."""
    from medcodec.data.catalog import entries
    from medcodec.data.fetch import load_volume, path_of

    entry = next(e for e in entries("eval") if e.name == name)
    vol = load_volume(path_of(entry))
    if np.all(vol == np.round(vol)) and vol.min() >= -32768 and vol.max() <= 65535:
        vol = vol.astype(np.int16 if vol.min() < 0 else np.uint16)
    return vol[0] if vol.shape[0] == 1 else vol


def sitk_image(a: np.ndarray):
    """A 2D image with non-trivial geometry and one metadata entry."""
    import SimpleITK as sitk

    img = sitk.GetImageFromArray(a)
    img.SetSpacing((0.7, 0.8))
    img.SetOrigin((-10.0, 20.5))
    img.SetDirection((1.0, 0.0, 0.0, -1.0))
    img.SetMetaData("0008|0060", "CT")
    return img


def machine() -> dict:
    import jax

    cpu = platform.processor() or platform.machine()
    if os.path.exists("/proc/cpuinfo"):
        names = [ln.split(":", 1)[1].strip() for ln in open("/proc/cpuinfo") if ln.startswith("model name")]
        cpu = names[0] if names else cpu
    return {"machine": f"{platform.machine()} {cpu}, {os.cpu_count()} cores, {jax.devices()[0].platform}",
            "python": platform.python_version(), "jax version": jax.__version__}


def run(selected: list[tuple[str, str, str, dict]], golden: bool) -> dict:
    import medcodec
    import medcodec.ratecontrol

    print(f"medcodec from {medcodec.__file__}", flush=True)
    record = {**machine(), "medcodec file": medcodec.__file__, "cases": {}}
    images: dict[str, np.ndarray] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, image, kind, kw in selected:
            t0 = time.perf_counter()
            try:
                if image not in images:
                    images[image] = load_image(image)
                    record["cases"][f"{image}/input"] = array_record(images[image])
                path = Path(tmp) / (name.replace("/", "__").replace(",", "_") + ".mlc")
                if kind == "compress":
                    medcodec.compress(images[image], path, overwrite=True, **kw)
                elif kind == "write":
                    medcodec.write(sitk_image(images[image]), path, overwrite=True, **kw)
                else:
                    medcodec.ratecontrol.compress_to(images[image], path, overwrite=True, **kw)
                data = path.read_bytes()
                rec = {"file_sha256": sha(data), "file_bytes": len(data),
                       **array_record(medcodec.decompress(path)[0])}
                path.unlink()
            except Exception as e:  # recorded, and reported as a failure
                traceback.print_exc()
                rec = {"error": f"{type(e).__name__}: {e}"}
            rec["seconds"] = round(time.perf_counter() - t0, 1)
            record["cases"][name] = rec
            print(f"{rec['seconds']:7.1f} s  {name}  {rec.get('file_bytes', rec.get('error'))}", flush=True)
    for p in sorted(GOLDEN.glob("golden_v1*.mlc")) if golden else []:
        # written for model "test-00000000", which no install ships: header facts, and the
        # decoded array only where the model is found (else the error's class)
        info = {k: v for k, v in medcodec.info(p).items() if k != "path"}
        try:
            rec = array_record(medcodec.decompress(p)[0])
        except medcodec.MedcodecError as e:
            rec = {"decode_error": type(e).__name__}
        record["cases"][f"golden/{p.name}"] = {"file_sha256": sha(p.read_bytes()), "info": info, **rec}
    return record


def compare(base: dict, new: dict, names: list[str]) -> int:
    """Print identical / DIFFERENT per case; return the number that differ."""
    different = 0
    for name in names:
        b, n = base["cases"].get(name), new["cases"].get(name)
        keys = sorted((set(b or {}) | set(n or {})) - {"seconds"})
        diff = [k for k in keys if (b or {}).get(k) != (n or {}).get(k)]
        ok = b is not None and n is not None and "error" not in b and not diff
        different += not ok
        why = "missing" if b is None or n is None else ", ".join(diff)
        print(f"{'identical' if ok else 'DIFFERENT'}  {name}" + ("" if ok else f"  ({why})"))
    for k in ("machine", "jax version"):
        if base.get(k) != new.get(k):
            print(f"note: {k} differs: {base.get(k)!r} vs {new.get(k)!r}")
    print(f"{len(names) - different} identical, {different} different")
    return different


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, help="write the record (JSON) here")
    ap.add_argument("--compare", type=Path, metavar="BASELINE.json", help="compare with this record")
    ap.add_argument("--reuse", action="store_true", help="with --compare: read --out instead of running")
    ap.add_argument("--only", metavar="SUBSTRING", help="only the cases whose name contains this")
    ap.add_argument("--full", action=argparse.BooleanOptionalAction, default=True,
                    help="include the slow CR chest rate-control case (default: on)")
    ap.add_argument("--list", action="store_true", help="print the case names and exit")
    args = ap.parse_args(argv)
    selected = [c for c in cases(args.full) if not args.only or args.only in c[0]]
    if args.list:
        print("\n".join(c[0] for c in selected))
        return 0
    golden = not args.only or any(args.only in f"golden/{p.name}" for p in GOLDEN.glob("golden_v1*.mlc"))
    if args.reuse:
        new = json.loads(args.out.read_text())
    else:
        t0 = time.perf_counter()
        new = run(selected, golden)
        print(f"total {time.perf_counter() - t0:.1f} s", flush=True)
        if args.out:
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(json.dumps(new, indent=1) + "\n")
            print(f"wrote {args.out}")
    failed = [n for n, r in new["cases"].items() if "error" in r]
    if not args.compare:
        print(f"{len(new['cases']) - len(failed)} recorded, {len(failed)} failed")
        return 1 if failed else 0
    base = json.loads(args.compare.read_text())
    wanted = [c[0] for c in selected] + [f"{c[1]}/input" for c in selected]
    wanted += [n for n in base["cases"] if golden and n.startswith("golden/")]
    names = [n for n in base["cases"] if n in wanted]
    names += [n for n in dict.fromkeys(wanted) if n not in base["cases"]]  # new cases: missing
    return 1 if compare(base, new, names) else 0


if __name__ == "__main__":
    sys.exit(main())
