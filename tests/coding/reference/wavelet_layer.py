"""Reference implementation (the coder before compilation: numpy and constriction), kept
as the oracle of the differential tests: the wavelet layer's band coding."""
from __future__ import annotations

import numpy as np

from medcodec.coding import wavelet
from medcodec.coding.wavelet_layer import _levels
from .rangecoder import AdaptiveBits, bit_decoder, bit_encoder, bit_length, code_bits, magnitude_class

_MAX_LEN = 48
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


def encode_bands_many(q_bands_list: list, shape: tuple[int, int]) -> list[bytes]:
    """:func:`encode_bands` of several slices of one shape, coded in lockstep (each its own
    stream and model; the numpy work is shared, which is what costs on small slices)."""
    coders, payloads = zip(*(bit_encoder() for _ in q_bands_list)) if q_bands_list else ((), ())
    _walk(shape, _levels(shape), q_bands_list, list(coders))
    return [payload() for payload in payloads]


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
