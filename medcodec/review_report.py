"""A reviewer's report of one compressed image: ``medcodec report ORIGINAL DECODED -o r.html``.

One self-contained HTML file (images embedded as PNG, the plot as inline SVG, no scripts):
original, decoded and difference of one slice side by side at native size, in a window that
fits the modality (the DICOM window when the source has one; CT soft tissue 40/400 HU; else
the 0.5-99.5 percentiles of the original); the numbers (bpp from the ``.mlc`` bytes, PSNR
with peak = the original's max - min, max error); the lossy-compression attributes a DICOM
reader is given; and the rate-distortion point against JPEG 2000 (OpenJPEG through
imagecodecs, every slice coded alone as DICOM does, swept over its quality parameter).
"""

from __future__ import annotations

import base64
import dataclasses
import html
import math
import os
import struct
import zlib
from pathlib import Path

import numpy as np

from . import prep
from .errors import InputError
from .io import lossy_flags
from .io.atomic import atomic_write

CT_SOFT_TISSUE = (40.0, 400.0)  # window centre, width (HU)
J2K_QUALITIES = tuple(range(30, 86, 5))  # OpenJPEG's quality parameter (its own PSNR target)


@dataclasses.dataclass(frozen=True)
class Reviewed:
    """What the report shows: both images (Z, Y, X), the decoded image's metadata, the
    ``.mlc`` size (None when the decoded image came as a plain image file)."""

    original: np.ndarray
    decoded: np.ndarray
    metadata: dict[str, str]
    mlc_bytes: int | None
    names: tuple[str, str]


def load(original: str | os.PathLike, decoded: str | os.PathLike) -> Reviewed:
    """Read ORIGINAL (any image or DICOM folder) and DECODED (a ``.mlc`` file, decoded here,
    or an image already decoded); InputError if their grids differ."""
    from .io.images import from_sitk, read_image

    orig = from_sitk(read_image(original))[0]
    if str(decoded).lower().endswith(".mlc"):
        from . import api

        dec, _ = api.decompress(decoded)
        meta, nbytes = api.read_image_metadata(decoded), os.path.getsize(decoded)
    else:
        dec, _, meta = from_sitk(read_image(decoded))
        nbytes = None
    orig, dec = (a.reshape((-1,) + a.shape[-2:]) for a in (orig, dec))
    if orig.shape != dec.shape:
        raise InputError(f"the original is {orig.shape[::-1]} voxels (x, y, slices), the decoded image "
                         f"{dec.shape[::-1]}: give the decoded image of this original")
    return Reviewed(orig, dec, meta, nbytes, (Path(original).name, Path(decoded).name))


def display_window(original: np.ndarray, metadata: dict[str, str]) -> tuple[float, float]:
    """(low, high) grey levels mapped to black and white, chosen for the modality."""
    def first(key):
        try:
            return float(metadata.get(key, "").split("\\")[0])
        except ValueError:
            return None

    centre, width = first("0028|1050"), first("0028|1051")
    if centre is not None and width:
        return centre - width / 2, centre + width / 2
    if metadata.get("0008|0060", "").strip() == "CT" or original.min() <= -500:
        c, w = CT_SOFT_TISSUE
        return c - w / 2, c + w / 2
    lo, hi = np.percentile(original, (0.5, 99.5))
    return float(lo), float(max(hi, lo + 1))


def grey8(plane: np.ndarray, low: float, high: float) -> np.ndarray:
    return np.clip(np.round((plane.astype(np.float64) - low) * (255.0 / (high - low))), 0, 255).astype(np.uint8)


def difference8(original: np.ndarray, decoded: np.ndarray) -> tuple[np.ndarray, float]:
    """Decoded - original as grey (128 = no error), scaled to +-the 99.9th percentile of
    |error| (at least 1 grey level); returns (image, that scale)."""
    d = decoded.astype(np.float64) - original.astype(np.float64)
    scale = max(1.0, float(np.percentile(np.abs(d), 99.9)))
    return np.clip(np.round(128 + 127 * d / scale), 0, 255).astype(np.uint8), scale


def png(gray: np.ndarray) -> bytes:
    """An 8-bit greyscale PNG (no colour profile: browsers show the values as they are)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    h, w = gray.shape
    rows = b"".join(b"\0" + gray[y].tobytes() for y in range(h))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows, 6)) + chunk(b"IEND", b""))


def jpeg2000_curve(original: np.ndarray) -> list[tuple[float, float]] | None:
    """(bpp, PSNR) of OpenJPEG over its quality sweep, each slice coded alone; None without
    imagecodecs."""
    try:
        import imagecodecs
    except ImportError:
        return None
    u = (original.astype(np.int64) - int(original.min())).astype(np.uint16)
    bits = max(8, math.ceil(math.log2(int(u.max()) + 1)))
    points = []
    for q in J2K_QUALITIES:
        blobs = [imagecodecs.jpeg2k_encode(s, level=q, bitspersample=bits) for s in u]
        back = np.stack([imagecodecs.jpeg2k_decode(b) for b in blobs])
        points.append((8.0 * sum(map(len, blobs)) / u.size, prep.psnr(u, back)))
    return sorted(points)


def psnr_at_rate(curve: list[tuple[float, float]], bpp: float) -> float | None:
    """The curve's PSNR at ``bpp``, linear in log rate; None outside the measured range."""
    for (b0, q0), (b1, q1) in zip(curve, curve[1:]):
        if b0 <= bpp <= b1 and b1 > b0:
            t = (math.log(bpp) - math.log(b0)) / (math.log(b1) - math.log(b0))
            return q0 + t * (q1 - q0)
    return None


def _svg_plot(curve, point, width=520, height=320) -> str:
    """Inline SVG: the JPEG 2000 curve and medcodec's point, PSNR (dB) over bpp."""
    x0, x1 = 0.0, max(4 * point[0] + 0.5, curve[1][0]) if len(curve) > 1 else 2 * point[0]
    curve = [c for c in curve if c[0] <= x1] or curve[:1]  # the neighbourhood of the point
    pts = list(curve) + [point]
    finite = [q for _, q in pts if math.isfinite(q)]
    x1 = max(b for b, _ in pts) * 1.1
    y0, y1 = math.floor(min(finite) - 1), math.ceil(max(finite) + 1)
    left, bottom = 50, height - 40

    def xy(b, q):
        q = min(q, y1) if math.isfinite(q) else y1
        return left + (b - x0) / (x1 - x0) * (width - left - 10), bottom - (q - y0) / (y1 - y0) * (bottom - 10)

    line = " ".join("%.1f,%.1f" % xy(b, q) for b, q in curve)
    px, py = xy(*point)
    ticks = "".join(f'<text x="{left - 6}" y="{xy(0, y)[1] + 4:.1f}" text-anchor="end">{y:g}</text>'
                    for y in np.linspace(y0, y1, 5))
    xticks = "".join(f'<text x="{xy(b, y0)[0]:.1f}" y="{bottom + 16}" text-anchor="middle">{b:.2g}</text>'
                     for b in np.linspace(x0, x1, 5))
    return (f'<svg id="rd" width="{width}" height="{height}" font-size="11" font-family="sans-serif">'
            f'<line x1="{left}" y1="{bottom}" x2="{width - 10}" y2="{bottom}" stroke="#444"/>'
            f'<line x1="{left}" y1="10" x2="{left}" y2="{bottom}" stroke="#444"/>{ticks}{xticks}'
            f'<text x="{(left + width) / 2}" y="{height - 6}" text-anchor="middle">bits per voxel</text>'
            f'<text x="12" y="{bottom / 2}" transform="rotate(-90 12 {bottom / 2})" text-anchor="middle">PSNR (dB)</text>'
            f'<polyline points="{line}" fill="none" stroke="#1f77b4" stroke-width="2"/>'
            f'<circle cx="{px:.1f}" cy="{py:.1f}" r="6" fill="#d62728"/>'
            f'<text x="{width - 14}" y="24" text-anchor="end" fill="#1f77b4">JPEG 2000 (OpenJPEG, per slice)</text>'
            f'<text x="{width - 14}" y="40" text-anchor="end" fill="#d62728">medcodec</text></svg>')


def render(r: Reviewed, slice_index: int | None = None) -> str:
    """The report's HTML."""
    z = r.original.shape[0] // 2 if slice_index is None else slice_index
    if not 0 <= z < r.original.shape[0]:
        raise InputError(f"slice {z} is outside 0..{r.original.shape[0] - 1}")
    low, high = display_window(r.original, r.metadata)
    diff, scale = difference8(r.original[z], r.decoded[z])
    panels = [("original", grey8(r.original[z], low, high)), ("decoded", grey8(r.decoded[z], low, high)),
              (f"difference (grey = 0, black/white = -/+{scale:g})", diff)]
    q = prep.psnr(r.original, r.decoded)
    err = prep.max_abs_error(r.original, r.decoded)
    bpp = None if r.mlc_bytes is None else 8.0 * r.mlc_bytes / r.original.size
    rows = [("slice shown", f"{z} of {r.original.shape[0]}"), ("display window", f"{low:g} .. {high:g}"),
            ("PSNR (peak = max - min)", "lossless" if math.isinf(q) else f"{q:.2f} dB"),
            ("max abs error", f"{err:g}"), ("bits per voxel (file bytes)", "n/a" if bpp is None else f"{bpp:.4f}"),
            ("lossy compression (0028,2110)", r.metadata.get(lossy_flags.LOSSY, "not stated")),
            ("ratio (0028,2112)", r.metadata.get(lossy_flags.RATIO, "")),
            ("method (0028,2114)", r.metadata.get(lossy_flags.METHOD, ""))]
    curve = jpeg2000_curve(r.original) if bpp is not None else None
    if curve is None:
        rd = ("<p>No rate-distortion comparison: " + ("the decoded image came without its .mlc file, so its "
              "rate is unknown." if bpp is None else "JPEG 2000 needs imagecodecs (pip install imagecodecs).")
              + "</p>")
    else:
        at = psnr_at_rate(curve, bpp)
        rows.append(("JPEG 2000 at the same rate", "outside its measured range" if at is None else f"{at:.2f} dB"))
        rd = _svg_plot(curve, (bpp, q))
    h, w = r.original.shape[-2:]
    imgs = "".join(f'<figure><img src="data:image/png;base64,{base64.b64encode(png(g)).decode()}" width="{w}" '
                   f'height="{h}" alt="{html.escape(t)}"><figcaption>{html.escape(t)}</figcaption></figure>'
                   for t, g in panels)
    table = "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(str(v))}</td></tr>" for k, v in rows)
    title = f"medcodec review: {r.names[1]} against {r.names[0]}"
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>body{{margin:0;font-family:sans-serif;background:#fff;color:#111}}
#panels{{display:flex;flex-wrap:wrap;gap:16px;margin:0;padding:0}} figure{{margin:0}}
img{{display:block;image-rendering:pixelated}} figcaption{{font-size:12px;padding:4px}}
main{{padding:12px}} th{{text-align:left;padding-right:16px;font-weight:normal;color:#555}}</style></head>
<body><div id="panels">{imgs}</div><main><h1 style="font-size:18px">{html.escape(title)}</h1>
<p><b>{html.escape(lossy_flags.summary(r.metadata)) if lossy_flags.LOSSY in r.metadata else "lossy-compression attributes not stated"}</b></p>
<table>{table}</table><h2 style="font-size:15px">Rate and quality</h2>{rd}
<p style="font-size:12px;color:#555">PSNR over the whole image, peak = the original's max - min. JPEG 2000: OpenJPEG
(imagecodecs), every slice coded alone, quality parameter {J2K_QUALITIES[0]}..{J2K_QUALITIES[-1]}.</p></main></body></html>"""


def write_report(original: str | os.PathLike, decoded: str | os.PathLike, out: str | os.PathLike,
                 slice_index: int | None = None, overwrite: bool = False) -> Path:
    """Write the report of ``decoded`` (``.mlc`` or image) against ``original`` to ``out``."""
    out = Path(out)
    if out.suffix.lower() not in (".html", ".htm"):
        raise InputError(f"the report is an HTML file; give -o report.html, got {out.name}")
    text = render(load(original, decoded), slice_index)
    atomic_write(out, [text.encode("utf-8")], overwrite=overwrite)
    return out
