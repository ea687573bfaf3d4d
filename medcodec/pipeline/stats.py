"""What an encode cost and kept: :class:`EncodeStats`, measured on the written file."""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from ..format import TileMap
from ..prep import block_sums


@dataclasses.dataclass
class EncodeStats:
    """What an encode cost and kept. bpp and ratio come from the bytes on disk."""

    path: str
    bytes: int
    voxels: int
    bpp: float
    ratio: float
    iterations: int
    psnr: float
    max_abs_error: float  # measured: the largest |decoded - original| over all voxels
    psnr_per_iteration: list[float]
    model_id: str
    error_bound: int | None = None  # E of the residual layer (0 = lossless), None without one
    transform_step: float | None = None  # step of the wavelet layer, None without one
    tiles: dict | None = None  # adaptive tiles: tile size, iteration counts, worst-tile PSNR
    psnr_roi: float | None = None  # PSNR inside a region of interest (rate control with a region)
    # squared error per code cell after 0..T iterations (T+1, slices, grid h, grid w), in
    # normalised units (window span = 1): what rate control plans adaptive tiles from
    cell_sse: np.ndarray | None = dataclasses.field(default=None, repr=False, compare=False)

    @property
    def max_error(self) -> float:
        """The measured largest error under its earlier name (``max_error`` now names only the
        bound one asks for, here ``error_bound``); kept so older scripts keep working."""
        return self.max_abs_error

    def as_dict(self) -> dict:
        """JSON-ready statistics (without the per-cell errors); ``max_error`` repeats
        ``max_abs_error`` for readers of the JSON written before the rename."""
        facts = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "cell_sse"}
        facts["max_error"] = self.max_abs_error
        return facts

    def summary(self) -> str:
        bound = "" if self.error_bound is None else (
            ", lossless" if self.error_bound == 0 else f", bound {self.error_bound}")
        if self.transform_step is not None:
            bound = f", wavelet layer step {self.transform_step:.4g}"
        tiles = "" if not self.tiles else (
            f"; {self.tiles['tile_pixels']}px tiles, {self.tiles['min_iterations']}-{self.tiles['max_iterations']} "
            f"iterations (mean {self.tiles['mean_iterations']:.1f}), worst tile {self.tiles['worst_tile_psnr']:.2f} dB")
        roi = "" if self.psnr_roi is None else f" ({self.psnr_roi:.2f} dB in the region)"
        return (f"{self.path}: {self.bytes} bytes, {self.bpp:.3f} bpp, ratio {self.ratio:.1f}:1, "
                f"PSNR {self.psnr:.2f} dB{roi}, max error {self.max_abs_error:g} ({self.iterations} iterations{bound}){tiles}")


def tile_summary(cell_sse: np.ndarray, tiles: TileMap, factor: int, valid_pixels: np.ndarray) -> dict:
    """Tile size, iteration counts and the worst tile's PSNR (peak = window span) from the
    final squared error per code cell (S, gh, gw) and the real pixels per cell (gh, gw)."""
    sse = block_sums(cell_sse, tiles.cells)
    pixels = block_sums(np.broadcast_to(valid_pixels, cell_sse.shape), tiles.cells)
    with np.errstate(divide="ignore"):
        psnr = np.where(sse > 0, 10 * np.log10(pixels / np.maximum(sse, 1e-30)), np.inf)
    counts = tiles.counts
    return {"tile_pixels": tiles.cells * factor, "tiles": int(sse.size), "min_iterations": int(counts.min()),
            "max_iterations": int(counts.max()), "mean_iterations": float(counts.mean()),
            "worst_tile_psnr": float(psnr[pixels > 0].min())}


def psnr_per_iteration(cell_sse: np.ndarray, voxels: int) -> list[float]:
    """PSNR after 1..T iterations (peak = window span) from the per-cell squared errors
    (T+1, slices, gh, gw) in normalised units."""
    mse_norm = cell_sse[1:].sum(axis=(1, 2, 3), dtype=np.float64) / voxels
    return [10 * math.log10(1.0 / m) if m > 0 else math.inf for m in mse_norm]
