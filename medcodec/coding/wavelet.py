"""2D CDF 9/7 wavelet transform (the JPEG 2000 lossy filter) by lifting, for any slice size.

Used by the wavelet layer (:mod:`medcodec.coding.wavelet_layer`). Float64, compiled
(:mod:`medcodec.coding.kernels.wavelet`) and bitwise equal to the numpy lifting here
(:func:`forward_numpy`, :func:`inverse_numpy`, the definitions), whole-sample symmetric
extension at the borders, so any length (odd, 1) works and the inverse is exact up to
rounding. The bitstream never depends on these floats: only the
reconstruction does (by far less than a grey level).

Layout: :func:`forward` returns ``[LL, (LH, HL, HH) of the coarsest level, ..., (LH, HL, HH)
of the finest level]``; subband l of a level has shape ceil/floor halves of the level's input.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from .lifting import ALPHA as _ALPHA, BETA as _BETA, DELTA as _DELTA, GAMMA as _GAMMA, ZETA as _ZETA


def _predict(d: np.ndarray, s: np.ndarray, c: float) -> None:
    """d[i] += c (s[i] + s[i+1]) along axis 0, s extended symmetrically on the right."""
    m = d.shape[0]
    right = s[1:m + 1] if s.shape[0] > m else np.concatenate([s[1:], s[-1:]])
    d += c * (s[:m] + right)


def _update(s: np.ndarray, d: np.ndarray, c: float) -> None:
    """s[i] += c (d[i-1] + d[i]) along axis 0, d extended symmetrically at both ends."""
    ext = np.concatenate([d[:1], d, d[-1:]])
    n = s.shape[0]
    s += c * (ext[:n] + ext[1:n + 1])


def _analyse(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One level along axis 0: (low ceil(n/2), high floor(n/2))."""
    s, d = x[0::2].copy(), x[1::2].copy()
    if d.shape[0] == 0:
        return s, d
    _predict(d, s, _ALPHA)
    _update(s, d, _BETA)
    _predict(d, s, _GAMMA)
    _update(s, d, _DELTA)
    return s * _ZETA, d / _ZETA


def _synthesise(s: np.ndarray, d: np.ndarray) -> np.ndarray:
    """Inverse of :func:`_analyse`."""
    if d.shape[0] == 0:
        return s.copy()
    s, d = s / _ZETA, d * _ZETA
    _update(s, d, -_DELTA)
    _predict(d, s, -_GAMMA)
    _update(s, d, -_BETA)
    _predict(d, s, -_ALPHA)
    out = np.empty((s.shape[0] + d.shape[0],) + s.shape[1:], np.float64)
    out[0::2], out[1::2] = s, d
    return out


def levels_for(h: int, w: int, most: int = 6) -> int:
    """Decomposition levels for an h x w slice: halve while the low band stays >= 8 px."""
    n, side = 0, min(h, w)
    while n < most and side >= 16:
        side = (side + 1) // 2
        n += 1
    return n


def forward(x: np.ndarray, levels: int) -> list:
    """x (h, w) -> [LL, (LH, HL, HH) coarsest, ..., (LH, HL, HH) finest], float64. Compiled
    (:mod:`.kernels.wavelet`), bitwise equal to :func:`forward_numpy`."""
    low = np.asarray(x, np.float64)
    if levels == 0:
        return [low]
    from .kernels.wavelet import analyse_level

    low = np.ascontiguousarray(low)
    details = []
    for _ in range(levels):
        low, lh, hl, hh = analyse_level(low)
        details.append((lh, hl, hh))
    return [low] + details[::-1]


def forward_numpy(x: np.ndarray, levels: int) -> list:
    """:func:`forward` in numpy: the definition the kernel follows operation for operation."""
    low = np.asarray(x, np.float64)
    details = []
    for _ in range(levels):
        lo_rows, hi_rows = _analyse(low)
        ll, lh = (b.T for b in _analyse(lo_rows.T))
        hl, hh = (b.T for b in _analyse(hi_rows.T))
        details.append((lh, hl, hh))
        low = ll
    return [low] + details[::-1]


def inverse(bands: list) -> np.ndarray:
    """Inverse of :func:`forward`, float64 (LL itself when there are no levels). Compiled
    (:mod:`.kernels.wavelet`), bitwise equal to :func:`inverse_numpy`."""
    if len(bands) == 1:
        return bands[0]
    from .kernels.wavelet import synthesise_level

    def as_float(b):
        return np.ascontiguousarray(b, np.float64)

    low = as_float(bands[0])
    for lh, hl, hh in bands[1:]:
        low = synthesise_level(low, as_float(lh), as_float(hl), as_float(hh))
    return low


def inverse_numpy(bands: list) -> np.ndarray:
    """:func:`inverse` in numpy: the definition the kernel follows operation for operation
    (the reference it is compared with)."""
    low = bands[0]
    for lh, hl, hh in bands[1:]:
        lo_rows = _synthesise(low.T, lh.T).T
        hi_rows = _synthesise(hl.T, hh.T).T
        low = _synthesise(lo_rows, hi_rows)
    return low


def band_shapes(h: int, w: int, levels: int) -> list:
    """Shapes in the layout of :func:`forward`: [LL, (LH, HL, HH), ...]."""
    shapes = []
    for _ in range(levels):
        h2, w2 = (h + 1) // 2, (w + 1) // 2
        shapes.append(((h2, w - w2), (h - h2, w2), (h - h2, w - w2)))
        h, w = h2, w2
    return [(h, w)] + shapes[::-1]


@lru_cache(maxsize=16)
def synthesis_norms(levels: int) -> tuple:
    """L2 norm of each band's synthesis basis function (same layout, LL first, then per
    level a (LH, HL, HH) triple): quantizing band b with step delta / norm_b spreads the
    squared error evenly. Measured on a 256 x 256 impulse response, so exact for interiors."""
    side = 256
    shapes = band_shapes(side, side, levels)
    zeros = [np.zeros(shapes[0])] + [tuple(np.zeros(s) for s in t) for t in shapes[1:]]

    def norm_of(pick) -> float:
        bands = [zeros[0].copy()] + [tuple(b.copy() for b in t) for t in zeros[1:]]
        band = pick(bands)
        band[band.shape[0] // 2, band.shape[1] // 2] = 1.0
        return float(np.sqrt((inverse(bands) ** 2).sum()))

    norms = [norm_of(lambda b: b[0])]
    for lev in range(1, levels + 1):
        norms.append(tuple(norm_of(lambda b, lev=lev, o=o: b[lev][o]) for o in range(3)))
    return tuple(norms)
