"""The HTML / PNG report of a finished batch."""

from __future__ import annotations

import math
import os
from pathlib import Path

from ..errors import InputError, MedcodecError
from .batch import Summary


def write_plot(summary: Summary, path: str | os.PathLike) -> str:
    """A summary plot: ``.png`` (needs matplotlib) or ``.html`` (a table; with the plot
    embedded when matplotlib is installed). Returns the path written."""
    import base64
    import html

    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".png", ".html", ".htm"):
        raise InputError(f"--plot writes .png or .html files, got {path.name}")
    png = None
    try:
        png = _plot_png(summary)
    except ImportError as e:
        if suffix == ".png":
            raise MedcodecError("a PNG plot needs matplotlib: pip install matplotlib "
                                "(or write an .html report)") from e
    if suffix == ".png":
        data = png
    else:
        rows = summary.ok + summary.failed
        cols = ["input", "output", "status", "voxels", "bytes_in", "bytes_out", "ratio", "bpp",
                "psnr", "max_error", "seconds", "error"]

        def cell(v):
            return f"{v:.4g}" if isinstance(v, float) else html.escape(str("" if v is None else v))

        table = "\n".join("<tr>" + "".join(f"<td>{cell(r.get(c))}</td>" for c in cols) + "</tr>" for r in rows)
        img = (f'<img alt="PSNR vs bpp" src="data:image/png;base64,{base64.b64encode(png).decode()}">'
               if png else "<p>(install matplotlib for the plot)</p>")
        data = (f"<!doctype html><html><head><meta charset='utf-8'><title>medcodec convert</title>"
                f"<style>body{{font-family:sans-serif}}td,th{{padding:2px 8px;border-bottom:1px solid #ddd}}"
                f"</style></head><body><h1>medcodec convert</h1><pre>{html.escape(summary.text())}</pre>"
                f"{img}<table><tr>{''.join(f'<th>{c}</th>' for c in cols)}</tr>\n{table}</table>"
                f"</body></html>").encode("utf-8")
    from ..io.atomic import atomic_write

    atomic_write(path, [data], overwrite=True)
    return str(path)


def _plot_png(summary: Summary) -> bytes:
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ok = [r for r in summary.ok if r.get("bpp") is not None]
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    pts = [(r["bpp"], float(r["psnr"])) for r in ok if r.get("psnr") is not None
           and math.isfinite(float(r["psnr"]))]
    if pts:
        axes[0].scatter([p[0] for p in pts], [p[1] for p in pts], s=12)
    axes[0].set_xlabel("bits per voxel (file size)")
    axes[0].set_ylabel("PSNR (dB, peak = max - min)")
    axes[0].set_title(f"{len(ok)} volumes, {len(summary.failed)} failed")
    ratios = [r["ratio"] for r in ok if r.get("ratio")]
    if ratios:
        axes[1].hist(ratios, bins=min(30, max(5, len(ratios))))
    axes[1].set_xlabel("compression ratio (raw : .mlc)")
    axes[1].set_ylabel("volumes")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    return buf.getvalue()
