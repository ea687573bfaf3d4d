"""Compiled CDF 9/7 lifting (:mod:`medcodec.coding.wavelet`), one level per call. The
inverse: along axis 1 row by row, then along axis 0 on whole rows, in place in the output;
the forward: along axis 0 on whole rows, then along axis 1 row by row.

The same floating-point operations in the same order as the numpy code (numba does not
fuse a multiply and an add without fastmath), so the results are bitwise equal: the
reconstruction an encoder measures is the one a decoder makes. Each row view (and each
call taking arrays) costs numba two atomic reference counts, so views are taken only
where a whole row's loop vectorizes in return.
"""

from __future__ import annotations

import numpy as np

from . import njit
from ..lifting import ALPHA as _ALPHA, BETA as _BETA, DELTA as _DELTA, GAMMA as _GAMMA, ZETA as _ZETA

_STEPS = ((-_DELTA, -_GAMMA), (-_BETA, -_ALPHA))  # (update, predict) constants, in order
_FORWARD_STEPS = ((_ALPHA, _BETA), (_GAMMA, _DELTA))  # (predict, update) constants, in order


@njit
def _lift_line(s, d):
    """Inverse lifting in place of one line: s (ns,) low and d (nd,) high samples, already
    scaled, ns in (nd, nd + 1), nd >= 1; whole-sample symmetric extension at the borders."""
    ns, nd = s.size, d.size
    for c_update, c_predict in _STEPS:
        s[0] += c_update * (d[0] + d[0])  # s[j] += c (d[j - 1] + d[j]), d clipped to its ends
        for j in range(1, nd):
            s[j] += c_update * (d[j - 1] + d[j])
        if ns > nd:
            s[nd] += c_update * (d[nd - 1] + d[nd - 1])
        for j in range(min(nd, ns - 1)):  # d[j] += c (s[j] + s[j + 1]), s clipped at its end
            d[j] += c_predict * (s[j] + s[j + 1])
        if nd == ns:
            d[nd - 1] += c_predict * (s[nd - 1] + s[nd - 1])


@njit
def _synthesise_rows(low, high, out, first):
    """Rows first, first + 2, ... of out: the rows of low (r, ns) and high (r, nd)
    synthesised along axis 1 (copies of low when nd = 0)."""
    ns, nd = low.shape[1], high.shape[1]
    s = np.empty(ns, np.float64)
    d = np.empty(nd, np.float64)
    for r in range(low.shape[0]):
        at = first + 2 * r
        if nd == 0:
            for j in range(ns):
                out[at, j] = low[r, j]
            continue
        for j in range(ns):
            s[j] = low[r, j] / _ZETA
        for j in range(nd):
            d[j] = high[r, j] * _ZETA
        _lift_line(s, d)
        for j in range(ns):
            out[at, 2 * j] = s[j]
        for j in range(nd):
            out[at, 2 * j + 1] = d[j]


@njit
def _lift(target, left, right, c):
    """target[x] += c (left[x] + right[x]): one lifting step on whole rows (1D, one size;
    separate views, so LLVM vectorizes it)."""
    for x in range(target.size):
        target[x] += c * (left[x] + right[x])


@njit
def _lift_columns(out, ns, nd):
    """:func:`_lift_line` along axis 0, every column at once, in place: row 2i of out holds
    s[i] (ns rows), row 2i + 1 d[i] (nd >= 1 rows), both unscaled."""
    w = out.shape[1]
    for i in range(ns):
        for x in range(w):
            out[2 * i, x] = out[2 * i, x] / _ZETA
    for i in range(nd):
        for x in range(w):
            out[2 * i + 1, x] = out[2 * i + 1, x] * _ZETA
    for c_update, c_predict in _STEPS:
        for i in range(ns):
            _lift(out[2 * i], out[2 * max(i - 1, 0) + 1], out[2 * min(i, nd - 1) + 1], c_update)
        for i in range(nd):
            _lift(out[2 * i + 1], out[2 * i], out[2 * min(i + 1, ns - 1)], c_predict)


@njit
def synthesise_level(ll, lh, hl, hh):
    """One level of the inverse: (h, w) float64 from LL (ceil(h/2), ceil(w/2)), LH
    (ceil(h/2), floor(w/2)), HL (floor(h/2), ceil(w/2)) and HH (floor(h/2), floor(w/2)),
    all float64 C-contiguous: LL with LH into the even rows and HL with HH into the odd
    rows along axis 1, then the rows along axis 0 (nothing more when h = 1)."""
    ns, nd = ll.shape[0], hl.shape[0]
    out = np.empty((ns + nd, ll.shape[1] + lh.shape[1]), np.float64)
    _synthesise_rows(ll, lh, out, 0)
    _synthesise_rows(hl, hh, out, 1)
    if nd:
        _lift_columns(out, ns, nd)
    return out


# --- forward ---------------------------------------------------------------------------------

@njit
def _analyse_line(s, d):
    """Forward lifting in place of one line (unscaled): s (ns,) the even and d (nd,) the odd
    samples, ns in (nd, nd + 1), nd >= 1; the extension of :func:`_lift_line`."""
    ns, nd = s.size, d.size
    for c_predict, c_update in _FORWARD_STEPS:
        for j in range(min(nd, ns - 1)):  # d[j] += c (s[j] + s[j + 1]), s clipped at its end
            d[j] += c_predict * (s[j] + s[j + 1])
        if nd == ns:
            d[nd - 1] += c_predict * (s[nd - 1] + s[nd - 1])
        s[0] += c_update * (d[0] + d[0])  # s[j] += c (d[j - 1] + d[j]), d clipped to its ends
        for j in range(1, nd):
            s[j] += c_update * (d[j - 1] + d[j])
        if ns > nd:
            s[nd] += c_update * (d[nd - 1] + d[nd - 1])


@njit
def _analyse_rows(x):
    """Each row of x (r, w) split along axis 1: (low (r, ceil(w/2)), high (r, floor(w/2))),
    the low half unscaled when w = 1 (as the numpy code leaves a line with no odd sample)."""
    r, w = x.shape
    ns, nd = (w + 1) // 2, w // 2
    low = np.empty((r, ns), np.float64)
    high = np.empty((r, nd), np.float64)
    s = np.empty(ns, np.float64)
    d = np.empty(nd, np.float64)
    for i in range(r):
        for j in range(ns):
            s[j] = x[i, 2 * j]
        if nd == 0:
            for j in range(ns):
                low[i, j] = s[j]
            continue
        for j in range(nd):
            d[j] = x[i, 2 * j + 1]
        _analyse_line(s, d)
        for j in range(ns):
            low[i, j] = s[j] * _ZETA
        for j in range(nd):
            high[i, j] = d[j] / _ZETA
    return low, high


@njit
def analyse_level(x):
    """One level of the forward transform: x (h, w) float64 C-contiguous -> (LL, LH, HL, HH)
    in the shapes :func:`synthesise_level` takes; the rows split first (even rows to the low
    band), then each half along axis 1, the order of the numpy code."""
    h, w = x.shape
    ns, nd = (h + 1) // 2, h // 2
    low = np.empty((ns, w), np.float64)
    high = np.empty((nd, w), np.float64)
    for i in range(ns):
        for j in range(w):
            low[i, j] = x[2 * i, j]
    for i in range(nd):
        for j in range(w):
            high[i, j] = x[2 * i + 1, j]
    if nd:
        for c_predict, c_update in _FORWARD_STEPS:
            for i in range(nd):
                _lift(high[i], low[i], low[min(i + 1, ns - 1)], c_predict)
            for i in range(ns):
                _lift(low[i], high[max(i - 1, 0)], high[min(i, nd - 1)], c_update)
        for i in range(ns):
            for j in range(w):
                low[i, j] = low[i, j] * _ZETA
        for i in range(nd):
            for j in range(w):
                high[i, j] = high[i, j] / _ZETA
    ll, lh = _analyse_rows(low)
    hl, hh = _analyse_rows(high)
    return ll, lh, hl, hh
