"""DICOM -> .mlc -> DICOM on real series with the shipped model: what a PACS would be given.

    python benchmarks/dicom_roundtrip.py          # -> benchmarks/results/dicom_roundtrip.md

For each source (nibabel's 2-slice MR series, pydicom's CT_small, the development CT
``explicit_VR-UN.dcm``) and each coding (``--psnr 45``, ``--lossless``), it encodes the DICOM
input, decodes to a DICOM series (one file per slice, and ``--multiframe``), and reports:
the errors dicom3tools' ``dciodvfy`` finds in the input and the output (new ones must be
none), (0028,2110) and the ratio (0028,2112) read by pydicom against the source's raw pixel
bytes (Rows x Columns x frames x Bits Allocated / 8) over the ``.mlc`` bytes, and whether
GDCM reads back the decode's pixels and geometry.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import pydicom  # noqa: E402

from medcodec import api  # noqa: E402
from medcodec.evaluate import machine_description  # noqa: E402
from medcodec.io.dicom import DicomOptions  # noqa: E402
from medcodec.io.images import from_sitk, read_image  # noqa: E402


def _package_file(package: str, member: str) -> Path:
    import importlib.util

    return Path(list(importlib.util.find_spec(package).submodule_search_locations)[0]) / member


def sources(work: Path) -> dict[str, Path]:
    mr = work / "mr_series"
    mr.mkdir()
    for name in ("0.dcm", "1.dcm"):
        shutil.copy(_package_file("nibabel", f"nicom/tests/data/{name}"), mr / name)
    return {"MR 2-slice series (nibabel)": mr,
            "CT_small (pydicom)": _package_file("pydicom", "data/test_files/CT_small.dcm"),
            "development CT explicit_VR-UN (pydicom-data)": _package_file("data_store", "data/explicit_VR-UN.dcm")}


def errors(path: Path) -> set[str]:
    out = subprocess.run(["dciodvfy", str(path)], capture_output=True, text=True, timeout=120)
    return {ln.strip() for ln in (out.stdout + out.stderr).splitlines() if ln.startswith("Error")}


def main() -> int:
    if shutil.which("dciodvfy") is None:
        print("dciodvfy is missing: apt-get install dicom3tools", file=sys.stderr)
        return 2
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for name, src in sources(work).items():
            files = sorted(src.iterdir()) if src.is_dir() else [src]
            datasets = [pydicom.dcmread(f) for f in files]
            raw = sum(d.Rows * d.Columns * int(getattr(d, "NumberOfFrames", 1)) * d.BitsAllocated // 8
                      for d in datasets)
            before = set().union(*(errors(f) for f in files))
            image = read_image(src)
            for coding, options in (("psnr 45", dict(psnr=45.0)), ("lossless", dict(max_error=0))):
                mlc = work / f"{len(rows)}.mlc"
                stats = api.write(image, mlc, **options)
                decoded, _ = api.decompress(mlc)
                reference = api.read(mlc)
                for multiframe in (False, True):
                    out = work / f"{len(rows)}_{multiframe}"
                    written = api.decode_to_dicom(mlc, out, DicomOptions(multiframe=multiframe))
                    new = set().union(*(errors(f) for f in written)) - before
                    first = pydicom.dcmread(written[0])
                    back = read_image(out)
                    same = np.array_equal(from_sitk(back)[0].reshape(decoded.shape), decoded) and all(
                        np.allclose(getattr(back, g)()[:decoded.ndim], getattr(reference, g)()[:decoded.ndim],
                                    atol=1e-4) for g in ("GetOrigin", "GetSpacing"))
                    stated = float(str(first.get("LossyImageCompressionRatio", "nan")).split("\\")[-1]) \
                        if "LossyImageCompressionRatio" in first else None
                    rows.append(dict(source=name, coding=coding, files=len(written), multiframe=multiframe,
                                     bpp=stats.bpp, psnr=stats.psnr, flag=first.LossyImageCompression,
                                     stated=stated, measured=raw / mlc.stat().st_size,
                                     errors_in=len(before), new_errors=sorted(new), gdcm_same=same))
                    print(rows[-1], flush=True)
    lines = ["# DICOM -> .mlc -> DICOM round trip (shipped model)", "",
             f"Machine: {machine_description()}. Command: `python benchmarks/dicom_roundtrip.py`.", "",
             "| source | coding | output | bpp | PSNR dB | (0028,2110) | ratio stated | raw bytes / .mlc bytes "
             "| dciodvfy errors in input | new errors in output | GDCM = decode |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        out = "1 multi-frame file" if r["multiframe"] else f"{r['files']} file(s)"
        stated = "-" if r["stated"] is None else f"{r['stated']:.2f}"
        lines.append(f"| {r['source']} | {r['coding']} | {out} | {r['bpp']:.3f} | {r['psnr']:.2f} | {r['flag']} | "
                     f"{stated} | {r['measured']:.2f} | {r['errors_in']} | {len(r['new_errors'])} | {r['gdcm_same']} |")
    news = sorted(set().union(*(r["new_errors"] for r in rows)))
    lines += ["", "New errors: " + ("none" if not news else "; ".join(news))]
    out = Path(__file__).parent / "results" / "dicom_roundtrip.md"
    out.write_text("\n".join(lines) + "\n")
    print(out)
    return 0 if not news and all(r["gdcm_same"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
