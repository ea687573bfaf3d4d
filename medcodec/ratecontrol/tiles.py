"""Spatially adaptive iterations: choose each tile's iteration count by rate-distortion.

A full encode with K iterations measures, for every code cell (FxF pixels), the squared
error after 0..K iterations (``EncodeStats.cell_sse``) and, per slice and iteration, the
entropy-coded bytes of the codes (the file's index). A tile of ``cells`` x ``cells`` code
cells then has a distortion D(k) and a rate R(k) for every count k; :func:`plan` picks per
tile the k minimising D(k) + lambda R(k), with one lambda for the whole image found by
bisection so that the image meets a bit budget or a distortion (PSNR) budget. Minimising
D + lambda R over tiles beats stopping each tile as soon as it meets a target: noisy tiles
that barely improve are not forced to the maximum, and their bits go where they buy more.

Rates are estimates (a tile's bits in iteration t are taken as the slice's average bits
per cell in t), and a re-encode with the chosen counts changes the codes near tile
borders, so the caller measures the real file and corrects (:mod:`medcodec.ratecontrol`).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from ..format import TileMap
from ..prep import block_sums

TILE_CELLS = 2  # tile side in code cells: 32 pixels for the stride-16 model
CHUNK_OVERHEAD_BYTES = 35  # per (slice, iteration) CODE chunk: header, CRC, prefix, index entry


@dataclasses.dataclass(frozen=True)
class Costs:
    """Per tile and count: distortion (K+1, S, ty, tx) in normalised squared error, rate
    (K+1, S, ty, tx) in bits; ``fixed_bits`` the file's size independent of the counts."""

    distortion: np.ndarray
    rate: np.ndarray
    fixed_bits: float
    cells: int

    @property
    def max_count(self) -> int:
        return self.distortion.shape[0] - 1


def costs(cell_sse: np.ndarray, payload_bytes: np.ndarray, file_bytes: int, cells: int = TILE_CELLS,
          weights: np.ndarray | None = None) -> Costs:
    """Tile costs from a full encode: ``cell_sse`` (K+1, S, gh, gw), ``payload_bytes`` (S, K)
    of its CODE chunks (every cell coded), ``file_bytes`` its size. ``weights`` (S, gh, gw)
    scale each cell's distortion (e.g. 1 inside a region of interest, less outside)."""
    k1, s, gh, gw = cell_sse.shape
    sse = cell_sse if weights is None else cell_sse * weights[None]
    distortion = block_sums(sse, cells)
    bits_per_cell = 8.0 * payload_bytes / (gh * gw)  # (S, K)
    cum = np.concatenate([np.zeros((s, 1)), np.cumsum(bits_per_cell, axis=1)], axis=1).T  # (K+1, S)
    tile_cells = block_sums(np.ones((1, gh, gw)), cells)[0]  # (ty, tx)
    rate = cum[:, :, None, None] * tile_cells[None, None]
    fixed = 8.0 * (file_bytes - payload_bytes.sum() - CHUNK_OVERHEAD_BYTES * payload_bytes.size)
    return Costs(distortion, rate, float(fixed), cells)


def _choose(c: Costs, lam: float) -> np.ndarray:
    """Counts (S, ty, tx) minimising D + lam R per tile."""
    return np.argmin(c.distortion + lam * c.rate, axis=0)


def _total_bits(c: Costs, counts: np.ndarray) -> float:
    chosen = np.take_along_axis(c.rate, counts[None], axis=0)[0].sum()
    slices = counts.shape[0]
    return float(chosen + c.fixed_bits + 8.0 * CHUNK_OVERHEAD_BYTES * slices * max(int(counts.max()), 1))


def _total_distortion(c: Costs, counts: np.ndarray) -> float:
    return float(np.take_along_axis(c.distortion, counts[None], axis=0)[0].sum())


def _edge(c: Costs, ok, ok_at_high_lambda: bool, steps: int = 60) -> np.ndarray:
    """Counts at the edge of ``ok`` along lambda (log-scale bisection over 1e-12..1e3):
    the lowest lambda where ok holds if ok holds at high lambda (budgets: rate falls as
    lambda grows), else the highest. If ok holds nowhere, the closest end."""
    lo, hi = 1e-12, 1e3
    good_end, bad_end = (hi, lo) if ok_at_high_lambda else (lo, hi)
    if not ok(_choose(c, good_end)):
        return _choose(c, good_end)
    if ok(_choose(c, bad_end)):
        return _choose(c, bad_end)
    for _ in range(steps):
        mid = float(np.sqrt(good_end * bad_end))
        if ok(_choose(c, mid)):
            good_end = mid
        else:
            bad_end = mid
    return _choose(c, good_end)


def plan_for_bits(c: Costs, budget_bits: float) -> TileMap:
    """The counts of least distortion whose estimated file size is <= ``budget_bits``: the
    Lagrangian choice, then the bits it leaves (many tiles switch at the same lambda) spent
    on one more iteration for the tiles that gain most per bit."""
    counts = _edge(c, lambda k: _total_bits(c, k) <= budget_bits, ok_at_high_lambda=True)
    return TileMap(c.cells, _fill(c, counts, budget_bits).astype(np.uint8))


def _fill(c: Costs, counts: np.ndarray, budget_bits: float) -> np.ndarray:
    """Add one iteration to the tiles with the best distortion drop per bit while the
    estimated size stays within ``budget_bits``."""
    spare = budget_bits - _total_bits(c, counts)
    step = np.minimum(counts + 1, c.max_count)
    take = lambda a, k: np.take_along_axis(a, k[None], axis=0)[0]  # noqa: E731
    d_gain = (take(c.distortion, counts) - take(c.distortion, step)).ravel()
    r_cost = (take(c.rate, step) - take(c.rate, counts)).ravel()
    useful = (step.ravel() > counts.ravel()) & (d_gain > 0)
    if spare <= 0 or not useful.any():
        return counts
    order = np.flatnonzero(useful)[np.argsort(-(d_gain[useful] / np.maximum(r_cost[useful], 1e-9)), kind="stable")]
    if int(step.ravel()[order].max()) > int(counts.max()):  # a longer file: more chunks
        spare -= 8.0 * CHUNK_OVERHEAD_BYTES * counts.shape[0]
    n = int(np.searchsorted(np.cumsum(r_cost[order]), spare, side="right"))
    out = counts.copy().ravel()
    out[order[:n]] += 1
    return out.reshape(counts.shape)


def plan_for_distortion(c: Costs, max_distortion: float) -> TileMap:
    """The cheapest counts whose estimated (weighted) squared error is <= ``max_distortion``
    (the best reachable if none is)."""
    counts = _edge(c, lambda k: _total_distortion(c, k) <= max_distortion, ok_at_high_lambda=False)
    return TileMap(c.cells, counts.astype(np.uint8))


def _dual_floor(primary: np.ndarray, secondary: np.ndarray, limit: float, steps: int = 80) -> float:
    """A lower bound on the total ``primary`` of every choice of counts whose total
    ``secondary`` is <= ``limit`` (both (K+1, S, ty, tx)): by weak duality, for every m >= 0,
    sum over tiles of min_k (primary + m secondary) - m limit is one. The dual is concave in
    m, so a ternary search in log m finds about its largest value; any m it
    stops at still gives a valid bound. m is searched within 6 decades of the ratio of the
    two totals' spans, where float64 rounding stays far below either."""
    spread = lambda a: max(float(np.ptp(a, axis=0).sum()), 1e-30)  # noqa: E731
    scale = spread(primary) / spread(secondary)

    def dual(log_m: float) -> float:
        m = scale * 10.0 ** log_m
        return float(np.min(primary + m * secondary, axis=0).sum()) - m * limit

    lo, hi = -6.0, 6.0
    for _ in range(steps):
        a, b = lo + (hi - lo) / 3, hi - (hi - lo) / 3
        lo, hi = (a, hi) if dual(a) < dual(b) else (lo, b)
    return max(dual(lo), float(primary.min(axis=0).sum()))  # m -> 0: every tile at its best count


def distortion_floor(c: Costs, budget_bits: float) -> float:
    """No counts whose estimated size is <= ``budget_bits`` have an estimated squared error
    below this (what a rate target's best learned file can reach, by the planner's costs)."""
    codes_bits = budget_bits - c.fixed_bits - 8.0 * CHUNK_OVERHEAD_BYTES * c.distortion.shape[1]
    return _dual_floor(c.distortion, c.rate, codes_bits)


def bits_floor(c: Costs, max_distortion: float) -> float:
    """No counts whose estimated squared error is <= ``max_distortion`` have an estimated
    size below this (bits; what a PSNR target's smallest learned file takes, by the
    planner's costs)."""
    return c.fixed_bits + 8.0 * CHUNK_OVERHEAD_BYTES * c.distortion.shape[1] + \
        _dual_floor(c.rate, c.distortion, max_distortion)
