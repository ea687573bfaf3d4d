"""Compiled walk of the bounded-error layer (:mod:`medcodec.coding.bounded_error` describes
it): hierarchical interpolation in integers, values binarized and range coded."""

from __future__ import annotations

import numpy as np

from . import njit
from .rangecoder import (cut, decode_bit, decode_equiprobable, encode_bit, encode_equiprobable, new_model,
                         probability, reserve, update)

SEED_STRIDE = 16
MAX_LEN = 40  # bit length of |q| for any 32-bit image
CLASSES = 12
N_CONTEXTS = 3 * CLASSES * 16
LOW_DEPTH = 2  # coding 1: the first two bits below the leading one are adaptive
LOW_CONTEXTS = 3 * LOW_DEPTH * MAX_LEN


@njit
def magnitude_class(v, classes):
    """floor(log2(1 + v)) capped to ``classes - 1``, for v >= 0."""
    k = 0
    while k + 1 < classes and v >= (1 << (k + 1)) - 1:
        k += 1
    return k


@njit
def bit_length(v):
    """Bits of v >= 0 (0 for 0)."""
    n = 0
    while v:
        v >>= 1
        n += 1
    return n


@njit
def _finish_pass(nonzero, nnz, n, model, seen, encoding, coder, low, low_depth, pass_kind):
    """Code the rest of a pass whose flags "L > 0" are coded (their n (context, bit) pairs
    in ``seen``): update the model, then the nnz nonzero values get their bit lengths
    (flags "L > j", j >= 1, in context), signs (p = 1/2) and the bits below the leading one:
    the first ``low_depth`` of them from the model ``low`` in context (pass kind, depth below
    the leading one, L), the rest at p = 1/2 (coding 0: low_depth = 0). nonzero int64
    (5, >= nnz): [0] flat position, [1] context base, [2] |q| (encoding; decoding: filled),
    [3] bit length so far, [4] sign. Returns the coder."""
    if n:
        update(model, seen, n)
    base, magnitude, length, negative = nonzero[1], nonzero[2], nonzero[3], nonzero[4]
    for i in range(nnz):
        length[i] = 1
    live = nnz
    j = 1
    while j < MAX_LEN and live:
        if encoding:
            coder = reserve(coder, live)
        n = 0
        for i in range(nnz):
            if length[i] != j:  # finished earlier
                continue
            ctx = base[i] * 16 + min(j, 15)
            if encoding:
                flag = bit_length(magnitude[i]) > j
                encode_bit(coder, flag, cut(probability(model, ctx)))
            else:
                flag = decode_bit(coder, cut(probability(model, ctx)))
            seen[0, n] = ctx
            seen[1, n] = flag
            n += 1
            if flag:
                length[i] += 1
            else:
                live -= 1
        if n:
            update(model, seen, n)
        j += 1
    if encoding:
        coder = reserve(coder, nnz)
    top = 0
    for i in range(nnz):  # signs at p = 1/2
        top = max(top, length[i])
        if encoding:
            encode_equiprobable(coder, negative[i] != 0)
        else:
            negative[i] = decode_equiprobable(coder)
            magnitude[i] = 1  # the leading one; the bits below follow
    for bit in range(top - 2, -1, -1):  # the bits below the leading one, most significant first
        if encoding:
            coder = reserve(coder, nnz)
        n = 0
        for i in range(nnz):
            if length[i] <= bit + 1:
                continue
            depth = length[i] - 2 - bit
            if depth < low_depth:
                ctx = (pass_kind * LOW_DEPTH + depth) * MAX_LEN + length[i]
                if encoding:
                    b = (magnitude[i] >> bit) & 1 != 0
                    encode_bit(coder, b, cut(probability(low, ctx)))
                else:
                    b = decode_bit(coder, cut(probability(low, ctx)))
                seen[0, n] = ctx
                seen[1, n] = b
                n += 1
            elif encoding:
                b = (magnitude[i] >> bit) & 1 != 0
                encode_equiprobable(coder, b)
            else:
                b = decode_equiprobable(coder)
            if not encoding:
                magnitude[i] = (magnitude[i] << 1) | np.int64(b)
        if n:
            update(low, seen, n)
    return coder


def new_models():
    """Fresh (flag model, low-bit model) of a slice."""
    return new_model(N_CONTEXTS), new_model(LOW_CONTEXTS)


@njit
def walk(base, target, max_error, encoding, coder, model, low, low_depth):
    """Code one slice: base int64 (h, w), target = x - base (encoding; ignored otherwise);
    returns (decoded residuals r' int64 (h, w), coder). Each pass's flags "q != 0" are
    coded as its predictions are formed; its nonzero values follow (:func:`_finish_pass`).
    ``model`` (N_CONTEXTS) and ``low`` (LOW_CONTEXTS) are the adaptive models, updated in
    place (fresh from :func:`new_models`, or where the previous slice left them);
    ``low_depth``: adaptive bits below the leading one (0 or LOW_DEPTH)."""
    h, w = base.shape
    step = 2 * max_error + 1
    rec = np.zeros((h, w), np.int64)
    cap = max(((h + SEED_STRIDE - 1) // SEED_STRIDE) * ((w + SEED_STRIDE - 1) // SEED_STRIDE),
              ((h + 1) // 2) * ((w + 1) // 2))
    nonzero = np.empty((5, cap), np.int64)
    seen = np.empty((2, cap), np.int64)
    s = SEED_STRIDE
    kind = 0
    while True:
        half = s // 2
        for part in range(3 if kind else 1):
            if kind == 0:
                oy, ox = 0, 0
            elif part == 0:
                oy, ox = half, half
            elif part == 1:
                oy, ox = 0, half
            else:
                oy, ox = half, 0
            pass_kind = 0 if kind == 0 else (1 if part == 0 else 2)
            stride = SEED_STRIDE if kind == 0 else s
            if oy >= h or ox >= w:
                continue
            if encoding:
                coder = reserve(coder, cap)
            n, nnz = 0, 0
            for y in range(oy, h, stride):
                for x in range(ox, w, stride):
                    if pass_kind == 0:
                        yl, yh = max(y - 1, 0), min(y + 1, h - 1)
                        xl, xh = max(x - 1, 0), min(x + 1, w - 1)
                        grad = abs(base[y, xh] - base[y, xl]) + abs(base[yh, x] - base[yl, x])
                        pred = 0
                        cls = magnitude_class(grad // (4 * step), CLASSES)
                    else:
                        total, cnt = 0, 0
                        hi, lo = -(1 << 62), 1 << 62
                        for k in range(4):
                            if pass_kind == 1:
                                dy, dx = (-1, -1, 1, 1)[k], (-1, 1, -1, 1)[k]
                            else:
                                dy, dx = (-1, 1, 0, 0)[k], (0, 0, -1, 1)[k]
                            yy, xx = y + dy * half, x + dx * half
                            if 0 <= yy < h and 0 <= xx < w:
                                v = rec[yy, xx]
                                total += v
                                cnt += 1
                                hi = max(hi, v)
                                lo = min(lo, v)
                        pred = (2 * total + cnt) // (2 * cnt)
                        cls = magnitude_class((hi - lo) // step, CLASSES)
                    ctx = (pass_kind * CLASSES + cls) * 16
                    q = 0
                    if encoding:
                        e = target[y, x] - pred
                        q = (abs(e) + max_error) // step
                        flag = q != 0
                        encode_bit(coder, flag, cut(probability(model, ctx)))
                    else:
                        flag = decode_bit(coder, cut(probability(model, ctx)))
                    seen[0, n] = ctx
                    seen[1, n] = flag
                    n += 1
                    rec[y, x] = pred  # + q * step once q is known (no pass reads its own positions)
                    if flag:
                        nonzero[0, nnz] = y * w + x
                        nonzero[1, nnz] = pass_kind * CLASSES + cls
                        if encoding:
                            nonzero[2, nnz] = q
                            nonzero[4, nnz] = target[y, x] < pred
                        nnz += 1
            coder = _finish_pass(nonzero, nnz, n, model, seen, encoding, coder, low, low_depth, pass_kind)
            flat = rec.ravel()
            for i in range(nnz):
                q = -nonzero[2, i] if nonzero[4, i] else nonzero[2, i]
                flat[nonzero[0, i]] += q * step
        if kind == 0:
            kind = 1
        else:
            s = half
            if s <= 1:
                break
    return rec, coder
