"""Transform residual layer: the learned base plus a context-coded wavelet residual, for
quality targets beyond the network's reach (``--psnr``) at a transform coder's rate.

The bounded-error layer (:mod:`medcodec.residual`) is predictive, like JPEG-LS: excellent
near lossless, but at 40-50 dB it spends far more bits than a transform coder. This layer
codes each slice's residual r = x - base in the CDF 9/7 wavelet domain
(:mod:`medcodec.wavelet`):

- quantization: band b (synthesis norm n_b) with step delta / n_b and a dead zone,
  q = sign(c) floor(|c| n_b / delta + TAU); reconstruction sign(q) (|q| + rho) delta / n_b;
  one delta per file (equal slope for mean squared error), rho stored in the file;
- coding order: LL, then per level from coarse to fine LH, HL, HH; inside a band
  hierarchical passes (every 4th row and column, then the centres and edge midpoints of the
  4-grid, then of the 2-grid), so most coefficients see decoded neighbours on all sides;
- q is binarized like the bounded-error layer (unary bit length, sign, low bits) and range
  coded (``constriction``) with adaptive integer counts; the context of a coefficient is
  (band group, pass kind, activity class, j), where activity combines the decoded
  neighbours in its band, its parent (same orientation, next coarser level) and its
  siblings (the other orientations at the same place, coded before it).

Contexts depend only on decoded integers, so the stream decodes identically on every
machine; the float base and transform only move the reconstruction (by far less than a grey
level between CPU and GPU). There is no error bound: the encoder measures the PSNR.
"""

from __future__ import annotations

import numpy as np

from . import wavelet
from .entropy import AdaptiveBits, bernoulli_family
from .errors import ContainerError

TAU = 0.30  # quantizer rounding offset (< 0.5: a dead zone around 0); tuned on training images
RHO = 0.15  # reconstruction offset inside a bin (coefficients sit low in their bins)
_MAX_LEN = 48
_CLASSES = 12
_KINDS = 4  # seed, distance-2 passes, distance-1 diagonal, distance-1 direct
_GROUPS = 4  # LL, coarse details, second finest level, finest level
_N_LEN = _GROUPS * _KINDS * _CLASSES * 16  # "bit length > j" flags, j >= 1
_N_SIG = _GROUPS * 2 * 3 * 3 * 3 * 4  # "q != 0": group, seed or not, pair counts, outside, class
_N_CTX = _N_LEN + _N_SIG
_CHUNK = 4096  # most positions coded between model updates
_DIAGONAL = ((-1, -1), (1, 1), (-1, 1), (1, -1))  # two pairs: see _code_band
_DIRECT = ((-1, 0), (1, 0), (0, -1), (0, 1))


def _passes(h: int, w: int):
    """Yield (kind, ys, xs, offsets, distance) over one band, in coding order."""
    ys, xs = np.meshgrid(np.arange(0, h, 4), np.arange(0, w, 4), indexing="ij")
    yield 0, ys.ravel(), xs.ravel(), (), 0
    for s, kinds in ((4, (1, 1)), (2, (2, 3))):
        half = s // 2
        for kind, (oy, ox), offsets in ((kinds[0], (half, half), _DIAGONAL),
                                        (kinds[1], (0, half), _DIRECT), (kinds[1], (half, 0), _DIRECT)):
            ys, xs = np.meshgrid(np.arange(oy, h, s), np.arange(ox, w, s), indexing="ij")
            if ys.size:
                yield kind, ys.ravel(), xs.ravel(), offsets, half


def _magnitude_class(v: np.ndarray) -> np.ndarray:
    out = np.zeros(v.shape, np.int64)
    for k in range(1, _CLASSES):
        out += v >= (1 << k) - 1
    return out


def _bit_length(a: np.ndarray) -> np.ndarray:
    out = np.zeros(a.shape, np.int64)
    for k in range(_MAX_LEN):
        out += a >= (np.int64(1) << k)
    return out


def _code_values(q_true, ctx_sig, ctx_len, model: AdaptiveBits, coder) -> np.ndarray:
    """Binarize and (de)code values: the flag "q != 0" in context ``ctx_sig``, the flags
    "bit length > j" (j >= 1) in ``ctx_len`` and j, then signs and low bits at p = 1/2."""
    n = ctx_sig.size
    length = _bit_length(np.abs(q_true)) if q_true is not None else np.zeros(n, np.int64)
    dec_len = np.zeros(n, np.int64)
    active = np.ones(n, bool)
    for j in range(_MAX_LEN):
        idx = np.nonzero(active)[0]
        if idx.size == 0:
            break
        ctx = _N_LEN + ctx_sig[idx] if j == 0 else ctx_len[idx] * 16 + min(j, 15)
        flags = np.asarray(coder(ctx, length[idx] > j), bool)
        model.update(ctx[None], flags[None])
        dec_len[idx[flags]] += 1
        active[idx[~flags]] = False
    nz = np.nonzero(dec_len)[0]
    vals = np.zeros(n, np.int64)
    vals[nz] = 1
    signs = np.asarray(coder(None, q_true[nz] < 0 if q_true is not None else np.zeros(nz.size, bool)), bool)
    for bit in range(int(dec_len.max(initial=0)) - 2, -1, -1):
        idx = nz[dec_len[nz] > bit + 1]
        want = ((np.abs(q_true[idx]) >> bit) & 1).astype(bool) if q_true is not None else np.zeros(idx.size, bool)
        vals[idx] = (vals[idx] << 1) | np.asarray(coder(None, want), bool)
    vals[nz] = np.where(signs, -vals[nz], vals[nz])
    return vals


def _spread(mag: np.ndarray, h: int, w: int, scale: int) -> np.ndarray:
    """|values| of a band of another size read at (y // scale, x // scale), clipped: (h, w)."""
    ys = np.minimum(np.arange(h) // scale, mag.shape[0] - 1)
    xs = np.minimum(np.arange(w) // scale, mag.shape[1] - 1)
    return mag[ys[:, None], xs[None, :]]


def _chunks(n: int):
    """Slices of 0..n growing from 16 to :data:`_CHUNK` positions: the model is updated
    after each, so a pass whose contexts are still untrained adapts within a few hundred
    coefficients instead of coding thousands at the starting probabilities."""
    lo, size = 0, 16
    while lo < n:
        yield slice(lo, lo + size)
        lo, size = lo + size, min(2 * size, _CHUNK)


def _code_band(target, group: int, orientation: int, parent, siblings, model: AdaptiveBits, coder,
               shape) -> np.ndarray:
    """(De)code one band's integers; returns them (h, w) int64. parent / siblings: int64
    magnitude maps (h, w) of decoded values (siblings summed) or None. orientation 1
    swaps the neighbour pairs, so "along the band's edges" shares contexts with band 0."""
    h, w = shape
    rec = np.zeros((h, w), np.int64)
    par = np.zeros((h, w), np.int64) if parent is None else parent
    sib = np.zeros((h, w), np.int64) if siblings is None else siblings
    outside = 4 * (par + sib)
    ext = np.minimum((par > 0).astype(np.int64) + (sib > 0), 2)
    mag = np.zeros((h, w), np.int64)
    for kind, ys, xs, offsets, dist in _passes(h, w):
        if orientation == 1:
            offsets = offsets[2:] + offsets[:2]
        total = np.zeros(ys.size, np.int64)
        cnt = np.zeros(ys.size, np.int64)
        pairs = [np.zeros(ys.size, np.int64), np.zeros(ys.size, np.int64)]
        for k, (dy, dx) in enumerate(offsets):
            yy, xx = ys + dy * dist, xs + dx * dist
            ok = (yy >= 0) & (yy < h) & (xx >= 0) & (xx < w)
            m = np.where(ok, mag[np.clip(yy, 0, h - 1), np.clip(xx, 0, w - 1)], 0)
            total += m
            cnt += ok
            pairs[k // 2] += m > 0
        if kind == 0:
            act = 2 * outside[ys, xs]
        else:
            act = (8 * total + cnt // 2) // np.maximum(cnt, 1) + outside[ys, xs]
        cls = _magnitude_class(act)
        ctx_len = (group * _KINDS + kind) * _CLASSES + cls
        ctx_sig = ((((group * 2 + (kind > 0)) * 3 + pairs[0]) * 3 + pairs[1]) * 3 + ext[ys, xs]) * 4 \
            + np.minimum(cls, 3)
        for part in _chunks(ys.size):
            want = None if target is None else target[ys[part], xs[part]]
            got = _code_values(want, ctx_sig[part], ctx_len[part], model, coder)
            rec[ys[part], xs[part]] = got
            mag[ys[part], xs[part]] = np.abs(got)
    return rec


def quantize(bands, delta: float, levels: int):
    """Wavelet bands -> integer bands (same layout)."""
    norms = wavelet.synthesis_norms(levels)

    def q(c, n):
        return (np.sign(c) * np.floor(np.abs(c) * (n / delta) + TAU)).astype(np.int64)

    return [q(bands[0], norms[0])] + [tuple(q(c, n) for c, n in zip(t, nt)) for t, nt in zip(bands[1:], norms[1:])]


def dequantize(q_bands, delta: float, levels: int, rho: float = RHO):
    """Integer bands -> wavelet bands."""
    norms = wavelet.synthesis_norms(levels)

    def d(q, n):
        return np.sign(q) * (np.abs(q) + rho) * (delta / n)

    return [d(q_bands[0], norms[0])] + [tuple(d(c, n) for c, n in zip(t, nt)) for t, nt in zip(q_bands[1:], norms[1:])]


def _levels(shape: tuple[int, int]) -> int:
    return wavelet.levels_for(*shape)


def quantized(residual: np.ndarray, delta: float, rho: float = RHO) -> tuple[list, np.ndarray]:
    """Quantize one slice's residual (h, w): (integer bands, the residual they decode to,
    float64). What the stream holds and what a decoder reconstructs, without coding it."""
    levels = _levels(residual.shape)
    q = quantize(wavelet.forward(residual, levels), delta, levels)
    return q, wavelet.inverse(dequantize(q, delta, levels, rho))


def finish(base: np.ndarray, decoded_residual: np.ndarray, window: tuple[float, float]) -> np.ndarray:
    """The final slice: base + residual, clipped to the window, rounded for integer types,
    in the base's pixel type."""
    out = np.clip(base.astype(np.float64) + decoded_residual, window[0], window[1])
    if base.dtype.kind in "iu":
        out = np.rint(out)
    return out.astype(base.dtype)


def encode_slice(original: np.ndarray, base: np.ndarray, delta: float, window: tuple[float, float],
                 rho: float = RHO) -> tuple[int, bytes, np.ndarray]:
    """One slice's layer: (levels, payload, final slice as a decoder reconstructs it)."""
    q, r = quantized(original.astype(np.float64) - base, delta, rho)
    return _levels(original.shape), encode_bands(q, original.shape), finish(base, r, window)


def encode_bands(q_bands, shape: tuple[int, int]) -> bytes:
    """Range-code one slice's integer bands (layout of :func:`quantize`): the payload."""
    import constriction

    enc = constriction.stream.queue.RangeEncoder()
    family = bernoulli_family()
    model = AdaptiveBits(_N_CTX)

    def coder(ctx, want):
        if want.size:
            p = model.probabilities(ctx[None])[0] if ctx is not None else np.full(want.size, 0.5)
            enc.encode(np.asarray(want, np.int32), family, p)
        return want

    _walk(shape, _levels(shape), q_bands, coder, model)
    return enc.get_compressed().astype("<u4").tobytes()


def decode_slice(base: np.ndarray, levels: int, data: bytes, delta: float, window: tuple[float, float],
                 rho: float = RHO) -> np.ndarray:
    """Inverse of :func:`encode_slice`: the final slice, in the base's pixel type."""
    import constriction

    if levels != _levels(base.shape):
        raise ContainerError(f"transform residual has {levels} levels; a {base.shape[0]}x{base.shape[1]} "
                             f"slice has {_levels(base.shape)}")
    if len(data) % 4:
        raise ContainerError("transform residual chunk is not a whole number of 32-bit words")
    dec = constriction.stream.queue.RangeDecoder(np.frombuffer(data, "<u4").astype(np.uint32))
    family = bernoulli_family()
    model = AdaptiveBits(_N_CTX)

    def coder(ctx, want):
        if not want.size:
            return want
        p = model.probabilities(ctx[None])[0] if ctx is not None else np.full(want.size, 0.5)
        try:
            return np.asarray(dec.decode(family, p)) > 0
        except Exception as e:  # constriction reports invalid data with AssertionError
            raise ContainerError(f"transform residual chunk does not decode: {e}") from e

    q = _walk(base.shape, levels, None, coder, model)
    return finish(base, wavelet.inverse(dequantize(q, delta, levels, rho)), window)


def _walk(shape, levels: int, q_bands, coder, model: AdaptiveBits) -> list:
    """(De)code all bands of a slice in order (layout of :func:`quantize`); q_bands: the true
    integers when encoding, None when decoding."""
    shapes = wavelet.band_shapes(*shape, levels)
    out = [_code_band(None if q_bands is None else q_bands[0], 0, 0, None, None, model, coder, shapes[0])]
    for lev in range(1, levels + 1):
        group = 3 if lev == levels else 2 if lev == levels - 1 else 1
        decoded = []
        for o in range(3):
            bshape = shapes[lev][o]
            parent = _spread(np.abs(out[lev - 1][o]), *bshape, 2) if lev > 1 else None
            sib = sum(_spread(np.abs(d), *bshape, 1) for d in decoded) if decoded else None
            decoded.append(_code_band(None if q_bands is None else q_bands[lev][o], group, o, parent, sib,
                                      model, coder, bshape))
        out.append(tuple(decoded))
    return out
