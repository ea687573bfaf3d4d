"""The wavelet layer: the learned base plus a context-coded wavelet residual, for
rate and quality targets (``--bpp``, ``--psnr``) at a transform coder's rate.

The bounded-error layer (:mod:`medcodec.coding.bounded_error`) is predictive, like JPEG-LS: excellent
near lossless, but at 40-50 dB it spends far more bits than a transform coder. This layer
codes each slice's residual r = x - base in the CDF 9/7 wavelet domain
(:mod:`medcodec.coding.wavelet`):

- quantization: band b (synthesis norm n_b) with step delta / n_b and a dead zone,
  q = sign(c) floor(|c| n_b / delta + TAU); reconstruction sign(q) (|q| + rho) delta / n_b;
  one delta per file (equal slope for mean squared error), rho stored in the file;
- coding order: LL, then per level from coarse to fine LH, HL, HH; inside a band
  hierarchical passes (every 4th row and column, then the centres and edge midpoints of the
  4-grid, then of the 2-grid), so most coefficients see decoded neighbours on all sides;
- q is binarized like the bounded-error layer (flag q != 0, unary bit length, sign, low
  bits) and range coded (``constriction``) with adaptive integer counts, updated after
  chunks of 16, 32, ... 4096 coefficients. Contexts: q != 0 from (band group, seed pass or
  not, how many of each neighbour pair along / across the band's edges are nonzero, parent
  and sibling significance, activity class); the length flags from (band group, pass kind,
  activity class, j); the sign from the neighbour pairs' signs; the bit below the leading
  one from (activity class, length); the other low bits at p = 1/2. Activity combines the
  decoded neighbours in the band, the parent (same orientation, next coarser level) and
  the siblings (the other orientations at the same place, coded before it).
- the encoder alone decides a dead zone TAU and drops isolated +-1 coefficients (no
  nonzero neighbour or parent) below 1 - TAU_ISOLATED steps: they cost more bits than the
  error they remove.

Contexts depend only on decoded integers, so the stream decodes identically on every
machine; the float base and transform only move the reconstruction (by far less than a grey
level between CPU and GPU). There is no error bound: the encoder measures the PSNR.
"""

from __future__ import annotations

import numpy as np

from . import wavelet
from .rangecoder import AdaptiveBits, bit_decoder, bit_encoder, bit_length, code_bits, magnitude_class
from ..errors import ContainerError

TAU = 0.30  # quantizer rounding offset (< 0.5: a dead zone around 0); tuned on training images
TAU_ISOLATED = 0.10  # rounding offset for an isolated coefficient (see quantize)
RHO = 0.15  # reconstruction offset inside a bin (coefficients sit low in their bins)
_MAX_LEN = 48
_MAX_Q = 2 ** 46
_CLASSES = 12
_KINDS = 4  # seed, distance-2 passes, distance-1 diagonal, distance-1 direct
_GROUPS = 4  # LL, coarse details, second finest level, finest level
_N_LEN = _GROUPS * _KINDS * _CLASSES * 16  # "bit length > j" flags, j >= 1
_N_SIG = _GROUPS * 2 * 3 * 3 * 3 * 4  # "q != 0": group, seed or not, pair counts, outside, class
_SIGN_BASE = _N_LEN + _N_SIG
_N_SIGN = _GROUPS * _KINDS * 9  # group, pass kind, signs of the two neighbour pairs
_LOW_BASE = _SIGN_BASE + _N_SIGN
_N_LOW = 8 * 16  # activity class (capped), bit length
_N_CTX = _LOW_BASE + _N_LOW
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


def _code_values(q_true, ctx_sig, ctx_len, ctx_sign, model: AdaptiveBits, coders) -> np.ndarray:
    """Binarize and (de)code the values of S streams in lockstep (all (S, m)): the flag
    "q != 0" in context ``ctx_sig``, the flags "bit length > j" (j >= 1) in ``ctx_len`` and
    j, signs in ``ctx_sign``, the first bit below the leading one in (class, length), the
    other low bits at p = 1/2. Each stream sees exactly the calls it would see alone: the
    signs are coded (and the model updated) even when a stream has no nonzero value."""
    length = bit_length(np.abs(q_true)) if q_true is not None else None
    dec_len = np.zeros(ctx_sig.shape, np.int64)
    active = np.ones(ctx_sig.shape, bool)
    for j in range(_MAX_LEN):
        if not active.any():
            break
        ctx = _N_LEN + ctx_sig if j == 0 else ctx_len * 16 + min(j, 15)
        flags = code_bits(coders, model, ctx, None if length is None else length > j, active)
        dec_len += flags
        active &= flags
    nz = dec_len > 0
    vals = nz.astype(np.int64)
    # the sign step updates every stream's model, nonzero values or not (as when coded alone)
    signs = code_bits(coders, model, _SIGN_BASE + ctx_sign, None if q_true is None else q_true < 0, nz,
                      every_stream=True)
    low_ctx = _LOW_BASE + np.minimum(ctx_len % _CLASSES, 7) * 16 + np.minimum(dec_len, 15)
    for bit in range(int(dec_len.max(initial=0)) - 2, -1, -1):
        sel = dec_len > bit + 1
        want = ((np.abs(q_true) >> bit) & 1).astype(bool) if q_true is not None else None
        first = sel & (dec_len == bit + 2)  # the bit right below the leading one
        got = code_bits(coders, model, low_ctx, want, first) if first.any() else np.zeros(sel.shape, bool)
        rest = sel & ~first
        if rest.any():
            got |= code_bits(coders, None, None, want, rest)
        vals = np.where(sel, (vals << 1) | got, vals)
    return np.where(signs, -vals, vals)


def _spread(mag: np.ndarray, h: int, w: int, scale: int) -> np.ndarray:
    """|values| of a band of another size read at (y // scale, x // scale), clipped:
    (..., h, w) from (..., h', w')."""
    ys = np.minimum(np.arange(h) // scale, mag.shape[-2] - 1)
    xs = np.minimum(np.arange(w) // scale, mag.shape[-1] - 1)
    return mag[..., ys[:, None], xs[None, :]]


def _chunks(n: int):
    """Slices of 0..n growing from 16 to :data:`_CHUNK` positions: the model is updated
    after each, so a pass whose contexts are still untrained adapts within a few hundred
    coefficients instead of coding thousands at the starting probabilities."""
    lo, size = 0, 16
    while lo < n:
        yield slice(lo, lo + size)
        lo, size = lo + size, min(2 * size, _CHUNK)


def _code_band(target, group: int, orientation: int, parent, siblings, model: AdaptiveBits, coders,
               shape) -> np.ndarray:
    """(De)code one band's integers of S streams in lockstep; returns them (S, h, w) int64.
    target: the true integers (S, h, w) when encoding, None when decoding. parent /
    siblings: int64 magnitude maps (S, h, w) of decoded values (siblings summed) or None.
    orientation 1 swaps the neighbour pairs, so "along the band's edges" shares contexts
    with band 0."""
    h, w = shape
    n = len(coders)
    rec = np.zeros((n, h, w), np.int64)
    par = np.zeros((n, h, w), np.int64) if parent is None else parent
    sib = np.zeros((n, h, w), np.int64) if siblings is None else siblings
    outside = par + sib
    ext = np.minimum((par > 0).astype(np.int64) + (sib > 0), 2)
    for kind, ys, xs, offsets, dist in _passes(h, w):
        if orientation == 1:
            offsets = offsets[2:] + offsets[:2]
        total = np.zeros((n, ys.size), np.int64)
        cnt = np.zeros(ys.size, np.int64)
        pairs = [np.zeros((n, ys.size), np.int64), np.zeros((n, ys.size), np.int64)]
        sign_pairs = [np.zeros((n, ys.size), np.int64), np.zeros((n, ys.size), np.int64)]
        for k, (dy, dx) in enumerate(offsets):
            yy, xx = ys + dy * dist, xs + dx * dist
            ok = (yy >= 0) & (yy < h) & (xx >= 0) & (xx < w)
            v = np.where(ok, rec[:, np.clip(yy, 0, h - 1), np.clip(xx, 0, w - 1)], 0)
            m = np.abs(v)
            total += m
            cnt += ok
            pairs[k // 2] += m > 0
            sign_pairs[k // 2] += np.sign(v)
        if kind == 0:
            act = 2 * outside[:, ys, xs]
        else:
            act = (8 * total + cnt // 2) // np.maximum(cnt, 1) + outside[:, ys, xs]
        cls = magnitude_class(act, _CLASSES)
        ctx_len = (group * _KINDS + kind) * _CLASSES + cls
        ctx_sig = ((((group * 2 + (kind > 0)) * 3 + pairs[0]) * 3 + pairs[1]) * 3 + ext[:, ys, xs]) * 4 \
            + np.minimum(cls // 2, 3)
        ctx_sign = (group * _KINDS + kind) * 9 + (np.clip(sign_pairs[0], -1, 1) + 1) * 3 \
            + np.clip(sign_pairs[1], -1, 1) + 1
        for part in _chunks(ys.size):
            want = None if target is None else target[:, ys[part], xs[part]]
            rec[:, ys[part], xs[part]] = _code_values(want, ctx_sig[:, part], ctx_len[:, part], ctx_sign[:, part],
                                                      model, coders)
    return rec


def quantize(bands, delta: float, levels: int):
    """Wavelet bands -> integer bands (same layout). Dead zone TAU everywhere; an isolated
    coefficient (no nonzero neighbour in its 3x3 block, zero parent) costs several bits
    to signal, so it is kept only from 1 - TAU_ISOLATED steps (rate-distortion choice made by
    the encoder alone: the decoder does not need to know)."""
    norms = wavelet.synthesis_norms(levels)

    def q(c, n):  # clipped far beyond any real image, so bit lengths stay below _MAX_LEN
        return np.clip(np.sign(c) * np.floor(np.abs(c) * (n / delta) + TAU), -_MAX_Q, _MAX_Q).astype(np.int64)

    out = [q(bands[0], norms[0])]
    for lev in range(1, levels + 1):
        level = []
        for o, (c, n) in enumerate(zip(bands[lev], norms[lev])):
            qb = q(c, n)
            nz = np.pad(qb != 0, 1).astype(np.int8)
            h, w = qb.shape
            around = sum(nz[dy:dy + h, dx:dx + w] for dy in range(3) for dx in range(3)) - nz[1:-1, 1:-1]
            if lev > 1:
                around = around + (_spread(np.abs(out[lev - 1][o]), h, w, 2) > 0)
            weak = (around == 0) & (np.abs(qb) == 1) & (np.abs(c) * (n / delta) < 1 - TAU_ISOLATED)
            qb[weak] = 0
            level.append(qb)
        out.append(tuple(level))
    return out


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
    return encode_slices(original[None], base[None], delta, window, rho)[0]


def encode_slices(originals: np.ndarray, bases: np.ndarray, delta: float, window: tuple[float, float],
                  rho: float = RHO) -> list[tuple[int, bytes, np.ndarray]]:
    """:func:`encode_slice` of several slices of one shape ((S, h, w) each), in lockstep."""
    shape = originals.shape[1:]
    done = [quantized(o.astype(np.float64) - b, delta, rho) for o, b in zip(originals, bases)]
    streams = encode_bands_many([q for q, _ in done], shape)
    return [(_levels(shape), data, finish(b, r, window)) for data, b, (_, r) in zip(streams, bases, done)]


def encode_bands(q_bands, shape: tuple[int, int]) -> bytes:
    """Range-code one slice's integer bands (layout of :func:`quantize`): the payload."""
    return encode_bands_many([q_bands], shape)[0]


def encode_bands_many(q_bands_list: list, shape: tuple[int, int]) -> list[bytes]:
    """:func:`encode_bands` of several slices of one shape, coded in lockstep (each its own
    stream and model; the numpy work is shared, which is what costs on small slices)."""
    coders, payloads = zip(*(bit_encoder() for _ in q_bands_list)) if q_bands_list else ((), ())
    _walk(shape, _levels(shape), q_bands_list, list(coders))
    return [payload() for payload in payloads]


def decode_slice(base: np.ndarray, levels: int, data: bytes, delta: float, window: tuple[float, float],
                 rho: float = RHO) -> np.ndarray:
    """Inverse of :func:`encode_slice`: the final slice, in the base's pixel type."""
    return decode_slices(base[None], levels, [data], delta, window, rho)[0]


def decode_slices(bases: np.ndarray, levels, datas: list[bytes], delta: float, window: tuple[float, float],
                  rho: float = RHO) -> np.ndarray:
    """:func:`decode_slice` of several slices of one shape (bases (S, h, w)), in lockstep;
    ``levels``: the stored level count, one for all or one per slice."""
    shape = bases.shape[1:]
    for stored in np.atleast_1d(levels):
        if stored != _levels(shape):
            raise ContainerError(f"wavelet layer has {stored} levels; a {shape[0]}x{shape[1]} "
                                 f"slice has {_levels(shape)}")
    levels = _levels(shape)
    out = np.empty(bases.shape, bases.dtype)
    for i, q in enumerate(decode_bands_many(datas, shape)):
        out[i] = finish(bases[i], wavelet.inverse(dequantize(q, delta, levels, rho)), window)
    return out


def decode_bands(data: bytes, shape: tuple[int, int]) -> list:
    """Inverse of :func:`encode_bands`: the integer bands of an (h, w) slice. Raises
    ContainerError for a stream that does not decode."""
    return decode_bands_many([data], shape)[0]


def decode_bands_many(datas: list[bytes], shape: tuple[int, int]) -> list[list]:
    """:func:`decode_bands` of several streams of slices of one shape, in lockstep."""
    coders = [bit_decoder(d, "wavelet layer chunk") for d in datas]
    return _walk(tuple(shape), _levels(shape), None, coders) if coders else []


def _walk(shape, levels: int, q_bands_list, coders) -> list[list]:
    """(De)code all bands of S slices in order (layout of :func:`quantize`), one stream
    and one adaptive model per slice; q_bands_list: the true integers of each slice when
    encoding, None when decoding. Returns each slice's bands."""
    shapes = wavelet.band_shapes(*shape, levels)
    model = AdaptiveBits(_N_CTX, len(coders))

    def truth(lev, o=None):
        if q_bands_list is None:
            return None
        return np.stack([np.asarray(q[lev] if o is None else q[lev][o], np.int64) for q in q_bands_list])

    out = [_code_band(truth(0), 0, 0, None, None, model, coders, shapes[0])]
    for lev in range(1, levels + 1):
        group = 3 if lev == levels else 2 if lev == levels - 1 else 1
        decoded = []
        for o in range(3):
            bshape = shapes[lev][o]
            parent = _spread(np.abs(out[lev - 1][o]), *bshape, 2) if lev > 1 else None
            sib = sum(_spread(np.abs(d), *bshape, 1) for d in decoded) if decoded else None
            decoded.append(_code_band(truth(lev, o), group, o, parent, sib, model, coders, bshape))
        out.append(tuple(decoded))
    return [[out[0][i]] + [tuple(b[i] for b in out[lev]) for lev in range(1, levels + 1)]
            for i in range(len(coders))]
