"""Reference implementation (the coder before compilation: numpy and constriction), kept
as the oracle of the differential tests: the bounded-error layer."""
from __future__ import annotations

import numpy as np

from medcodec.coding.bounded_error import _final

from .rangecoder import AdaptiveBits, bit_decoder, bit_encoder, bit_length, code_bits, magnitude_class

SEED_STRIDE = 16
_MAX_LEN = 40  # bit length of |q| for any 32-bit image
_CLASSES = 12
_N_CTX = 3 * _CLASSES * 16
_DIAGONAL = ((-1, -1), (-1, 1), (1, -1), (1, 1))
_DIRECT = ((-1, 0), (1, 0), (0, -1), (0, 1))


def _passes(h: int, w: int):
    """Yield (kind, ys, xs, neighbour offsets, step) in coding order (see module doc)."""
    s = SEED_STRIDE
    ys, xs = np.meshgrid(np.arange(0, h, s), np.arange(0, w, s), indexing="ij")
    yield 0, ys.ravel(), xs.ravel(), (), 0
    while s > 1:
        half = s // 2
        for kind, (oy, ox), offsets in ((1, (half, half), _DIAGONAL),
                                        (2, (0, half), _DIRECT), (2, (half, 0), _DIRECT)):
            ys, xs = np.meshgrid(np.arange(oy, h, s), np.arange(ox, w, s), indexing="ij")
            if ys.size:
                yield kind, ys.ravel(), xs.ravel(), offsets, half
        s = half


def _code_values(q_true: np.ndarray | None, ctx_base: np.ndarray, model: AdaptiveBits, coders) -> np.ndarray:
    """Binarize and (de)code one pass of quantized values of S slices in lockstep ((S, m)
    each; one stream and model per slice); returns them (int64)."""
    length = bit_length(np.abs(q_true)) if q_true is not None else None
    dec_len = np.zeros(ctx_base.shape, np.int64)
    active = np.ones(ctx_base.shape, bool)
    for j in range(_MAX_LEN):  # unary bit length: flag "L > j" while active
        if not active.any():
            break
        flags = code_bits(coders, model, ctx_base * 16 + min(j, 15), None if length is None else length > j,
                          active)
        dec_len += flags
        active &= flags
    nz = dec_len > 0
    vals = nz.astype(np.int64)
    signs = code_bits(coders, None, None, None if q_true is None else q_true < 0, nz)
    for bit in range(int(dec_len.max(initial=0)) - 2, -1, -1):  # the bits below the leading one
        sel = dec_len > bit + 1
        want = ((np.abs(q_true) >> bit) & 1).astype(bool) if q_true is not None else None
        vals = np.where(sel, (vals << 1) | code_bits(coders, None, None, want, sel), vals)
    return np.where(signs, -vals, vals)


def _walk(bases: np.ndarray, targets: np.ndarray | None, max_error: int, coders) -> np.ndarray:
    """Code S slices of one shape in lockstep; returns the decoded residuals r' (S, h, w)
    int64. ``targets``: the true residuals x - base when encoding, None when decoding."""
    n, h, w = bases.shape
    step = 2 * max_error + 1
    model = AdaptiveBits(_N_CTX, n)
    rec = np.zeros((n, h, w), np.int64)
    b = np.pad(bases.astype(np.int64), ((0, 0), (1, 1), (1, 1)), mode="edge")
    grad = np.abs(b[:, 1:-1, 2:] - b[:, 1:-1, :-2]) + np.abs(b[:, 2:, 1:-1] - b[:, :-2, 1:-1])
    for kind, ys, xs, offsets, dist in _passes(h, w):
        if kind == 0:
            pred = np.zeros((n, ys.size), np.int64)
            cls = magnitude_class(grad[:, ys, xs] // (4 * step), _CLASSES)
        else:
            vals, inside = [], []
            for dy, dx in offsets:
                yy, xx = ys + dy * dist, xs + dx * dist
                ok = (yy >= 0) & (yy < h) & (xx >= 0) & (xx < w)
                vals.append(np.where(ok, rec[:, np.clip(yy, 0, h - 1), np.clip(xx, 0, w - 1)], 0))
                inside.append(ok)
            vals, inside = np.stack(vals), np.stack(inside)[:, None, :]  # (4, S, m), (4, 1, m)
            cnt = inside.sum(axis=0)
            pred = (2 * vals.sum(axis=0) + cnt) // (2 * cnt)  # rounded mean (cnt >= 1 here)
            hi = np.where(inside, vals, np.iinfo(np.int64).min).max(axis=0)
            lo = np.where(inside, vals, np.iinfo(np.int64).max).min(axis=0)
            cls = magnitude_class((hi - lo) // step, _CLASSES)
        q_true = None
        if targets is not None:
            e = targets[:, ys, xs] - pred
            q_true = np.sign(e) * ((np.abs(e) + max_error) // step)
        q = _code_values(q_true, kind * _CLASSES + cls, model, coders)
        rec[:, ys, xs] = pred + q * step
    return rec


def encode_slices(originals: np.ndarray, bases: np.ndarray, max_error: int) -> list[tuple[bytes, np.ndarray]]:
    """:func:`encode_slice` of S slices of one shape ((S, h, w) each), coded in lockstep."""
    coders, payloads = zip(*(bit_encoder() for _ in range(len(originals))))
    targets = originals.astype(np.int64) - bases.astype(np.int64)
    rec = _walk(bases, targets, max_error, list(coders))
    return [(payload(), _final(b, r, originals.dtype)) for payload, b, r in zip(payloads, bases, rec)]


def decode_slices(bases: np.ndarray, datas: list[bytes], max_error: int) -> np.ndarray:
    """:func:`decode_slice` of S slices of one shape (bases (S, h, w)), in lockstep."""
    coders = [bit_decoder(d, "bounded-error layer chunk") for d in datas]
    return _final(bases, _walk(bases, None, max_error, coders), bases.dtype)

