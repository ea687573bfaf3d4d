"""How slices meet the network: coded sizes, batches, code masks and per-cell iteration
maps (numpy only). Shapes: slices (S, H, W); codes (k, batch, hc/F, wc/F, bits) for a
model of stride F; a code grid of gh x gw cells holds the codes that are stored."""

from __future__ import annotations

import dataclasses
import functools

import numpy as np

from .. import prep
from ..errors import InputError
from ..format import TileMap


@dataclasses.dataclass(frozen=True)
class Layout:
    """Coded height/width (padded to the stride and a bucket), stored code grid, batch size."""

    coded_height: int
    coded_width: int
    grid_h: int
    grid_w: int
    batch: int
    factor: int

    @classmethod
    def of(cls, cfg, height: int, width: int, n_slices: int) -> "Layout":
        hc, wc = prep.coded_size(height, cfg.factor), prep.coded_size(width, cfg.factor)
        gh, gw = prep.code_grid(height, cfg.factor), prep.code_grid(width, cfg.factor)
        batch = min(prep.batch_size_for(hc, wc), 1 << max(n_slices - 1, 0).bit_length())
        return cls(hc, wc, gh, gw, batch, cfg.factor)

    @property
    def coded_grid(self) -> tuple[int, int]:
        """The network's code grid (hc/F, wc/F), padding included."""
        return self.coded_height // self.factor, self.coded_width // self.factor

    @functools.cached_property
    def code_mask(self) -> np.ndarray:
        """(1, hc/F, wc/F, 1) float32: 1 on stored code cells, 0 on bucket padding (made once)."""
        mask = np.zeros((1,) + self.coded_grid + (1,), np.float32)
        mask[:, : self.grid_h, : self.grid_w] = 1.0
        return mask

    def batches(self, n_slices: int):
        """(start, stop) of consecutive batches over ``n_slices`` slices."""
        for start in range(0, n_slices, self.batch):
            yield start, min(start + self.batch, n_slices)

    def iteration_map(self, tiles: TileMap, slice_ids) -> np.ndarray:
        """Per code cell counts of some slices as the network's (batch, hc/F, wc/F, 1) int32
        map; bucket padding and unused batch rows get 0."""
        out = np.zeros((self.batch,) + self.coded_grid + (1,), np.int32)
        ids = list(slice_ids)
        if ids:  # only these slices' counts: per batch, not the whole volume's
            out[: len(ids), : self.grid_h, : self.grid_w, 0] = TileMap(
                tiles.cells, tiles.counts[ids]).cell_counts(self.grid_h, self.grid_w)
        return out

    def zero_tiles(self, n: int) -> TileMap:
        """Count 0 for n slices, one tile each: no learned iterations (the base is the
        window's middle)."""
        return TileMap(max(self.grid_h, self.grid_w), np.zeros((n, 1, 1), np.uint8))

    def check_tiles(self, tiles: TileMap | None, n: int, what: str) -> None:
        """Tile counts must cover n slices of this code grid (InputError)."""
        if tiles is None:
            return
        want = (n, -(-self.grid_h // tiles.cells), -(-self.grid_w // tiles.cells))
        if tiles.cells < 1 or tuple(tiles.counts.shape) != want:
            raise InputError(f"{what}: tile counts of shape {tuple(tiles.counts.shape)} with {tiles.cells}-cell "
                             f"tiles do not fit {n} slices of {self.grid_h}x{self.grid_w} code cells (want {want})")


def as_slices(array: np.ndarray) -> np.ndarray:
    """(..., H, W) -> (S, H, W), S = the product of the leading axes."""
    return array.reshape((-1,) + array.shape[-2:])


def by_iterations(tiles: TileMap | None, coded: list[int]) -> list[int]:
    """Positions in ``coded`` (coded slice ids) ordered by each slice's largest tile count,
    so a batch holds slices that stop iterating together: the decoder runs only to the
    batch's largest count (``codec.decode``), and one slow slice does not hold up three fast
    ones. Slices are independent in the network, so the order changes no pixel."""
    if tiles is None:
        return list(range(len(coded)))
    longest = tiles.counts.reshape(tiles.counts.shape[0], -1).max(axis=1)
    return sorted(range(len(coded)), key=lambda i: int(longest[coded[i]]))


def to_pixels(rec, height: int, width: int, window, dtype: str) -> np.ndarray:
    """The decoder's output (batch, hc, wc, 1), cropped and in the pixel type (waits for it)."""
    return prep.denormalise(np.asarray(rec)[:, :height, :width, 0], window, dtype)
