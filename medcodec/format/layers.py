"""Layer chunks: adaptive tile counts (TILE), the bounded-error layer (RIDX/RESD) and the
wavelet layer (XIDX/XRES) as plain data; the reader and writer frame them."""

from __future__ import annotations

import dataclasses
import math
import zlib
from typing import TYPE_CHECKING

import numpy as np

from ..errors import ContainerError
from .spec import TILE_PREFIX, ZPRD_PREFIX

if TYPE_CHECKING:  # only for the annotation: the header module needs nothing from here
    from .header import Header


@dataclasses.dataclass
class TileMap:
    """Adaptive tiles: ``counts`` uint8 (slices, tiles_y, tiles_x) iterations per tile of
    ``cells`` x ``cells`` code cells."""

    cells: int
    counts: np.ndarray

    def cell_counts(self, grid_h: int, grid_w: int) -> np.ndarray:
        """Per code cell counts (slices, grid_h, grid_w), int32."""
        # by index, not np.repeat: a forged tile size must not allocate beyond the grid
        rows = np.minimum(np.arange(grid_h) // self.cells, self.counts.shape[1] - 1)
        cols = np.minimum(np.arange(grid_w) // self.cells, self.counts.shape[2] - 1)
        return self.counts.astype(np.int32)[:, rows][:, :, cols]

    def encode(self) -> bytes:
        s, ty, tx = self.counts.shape
        return TILE_PREFIX.pack(self.cells, s, ty, tx) + zlib.compress(
            np.ascontiguousarray(self.counts, np.uint8).tobytes(), 9)

    @staticmethod
    def decode(payload: bytes, header: "Header") -> "TileMap":
        if len(payload) < TILE_PREFIX.size:
            raise ContainerError("TILE chunk too short")
        cells, s, ty, tx = TILE_PREFIX.unpack_from(payload)
        if cells < 1 or s != header.slices or not (1 <= ty <= header.coded_height and 1 <= tx <= header.coded_width):
            raise ContainerError("TILE chunk does not match the header")
        n = s * ty * tx
        inflater = zlib.decompressobj()
        try:
            raw = inflater.decompress(payload[TILE_PREFIX.size :], n + 1)
        except zlib.error as e:
            raise ContainerError("TILE chunk does not inflate") from e
        if len(raw) != n or not inflater.eof or inflater.unused_data:
            raise ContainerError("TILE chunk holds the wrong number of tile counts")
        return TileMap(cells, np.frombuffer(raw, np.uint8).reshape(s, ty, tx))


@dataclasses.dataclass
class BoundedErrorLayer:
    """The bounded-error layer: max_error E and per slice (crc_base, crc_final, stream);
    ``prediction`` its inter-slice prediction (ZPRD, since 1.5); ``coding`` its streams'
    coding (the RESD coding byte: 0 up to 1.5, 1 since 1.6)."""

    max_error: int
    slices: list[tuple[int, int, bytes]]
    prediction: "SlicePrediction | None" = None
    coding: int = 1


@dataclasses.dataclass
class WaveletLayer:
    """The wavelet layer: quantizer step ``delta`` and reconstruction offset
    ``rho`` (see :mod:`medcodec.coding.wavelet_layer`), per slice (levels, stream)."""

    delta: float
    rho: float
    slices: list[tuple[int, bytes]]
    prediction: "SlicePrediction | None" = None


@dataclasses.dataclass
class SlicePrediction:
    """Inter-slice prediction of the residual layer (ZPRD): key interval N (0: only slice 0 is
    a key slice), per slice ``modes`` uint8 (S,) (0 intra, 1 inter) and ``weights`` int8 (S, B)."""

    key_interval: int
    modes: np.ndarray
    weights: np.ndarray

    def encode(self) -> bytes:
        s, b = self.weights.shape
        rows = np.concatenate([np.asarray(self.modes, np.uint8)[:, None].view(np.int8),
                               np.asarray(self.weights, np.int8)], axis=1)
        return ZPRD_PREFIX.pack(self.key_interval, b, s) + np.ascontiguousarray(rows).tobytes()

    @staticmethod
    def decode(payload: bytes, header: "Header") -> "SlicePrediction":
        if len(payload) < ZPRD_PREFIX.size:
            raise ContainerError("ZPRD chunk too short")
        key, b, s = ZPRD_PREFIX.unpack_from(payload)
        if s != header.slices or b < 1 or (b - 1) % 3 or len(payload) != ZPRD_PREFIX.size + s * (1 + b):
            raise ContainerError("ZPRD chunk does not match the header")
        rows = np.frombuffer(payload, np.int8, offset=ZPRD_PREFIX.size).reshape(s, 1 + b)
        modes = rows[:, 0].view(np.uint8).copy()
        keys = np.arange(s) % key == 0 if key else np.arange(s) == 0
        if modes.max(initial=0) > 1 or modes[keys].any():
            raise ContainerError("ZPRD chunk has an unknown mode or an inter key slice")
        if header.grid is not None or header.ndim != 3:
            raise ContainerError("ZPRD chunk in a file that is not a 3-D volume of whole slices")
        return SlicePrediction(key, modes, rows[:, 1:].copy())



def valid_wavelet_step(delta: float, rho: float) -> bool:
    """Whether a wavelet layer's step and reconstruction offset are in the format's range."""
    return math.isfinite(delta) and 0 < delta < 1e300 and math.isfinite(rho) and 0 <= rho < 1

