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
def _code_values(work, m, model, seen, encoding, coder):
    """(De)code the m values of one pass. work int64 (5, >= m): [0] the true q (encoding) /
    the decoded q, [1] the context base (pass kind, class), [2..4] scratch. Returns the coder."""
    length, dec_len, active = work[2], work[3], work[4]
    for i in range(m):
        length[i] = bit_length(abs(work[0, i])) if encoding else 0
        dec_len[i] = 0
        active[i] = 1
    live = m
    j = 0
    while j < MAX_LEN and live:  # unary bit length: flag "L > j" while active
        if encoding:
            coder = reserve(coder, live)
        n = 0
        for i in range(m):
            if not active[i]:
                continue
            ctx = work[1, i] * 16 + min(j, 15)
            if encoding:
                flag = length[i] > j
                encode_bit(coder, flag, cut(probability(model, ctx)))
            else:
                flag = decode_bit(coder, cut(probability(model, ctx)))
            seen[0, n] = ctx
            seen[1, n] = flag
            n += 1
            if flag:
                dec_len[i] += 1
            else:
                active[i] = 0
                live -= 1
        if n:
            update(model, seen, n)
        j += 1
    if encoding:
        coder = reserve(coder, m)
    top = 0
    for i in range(m):  # signs at p = 1/2; active[] now holds "negative"
        top = max(top, dec_len[i])
        active[i] = 0
        if dec_len[i]:
            if encoding:
                active[i] = work[0, i] < 0
                encode_equiprobable(coder, active[i] != 0)
            else:
                active[i] = decode_equiprobable(coder)
    for i in range(m):
        length[i] = 1 if dec_len[i] else 0  # from here: the magnitude decoded so far
    for bit in range(top - 2, -1, -1):  # the bits below the leading one, at p = 1/2
        if encoding:
            coder = reserve(coder, m)
        for i in range(m):
            if dec_len[i] > bit + 1:
                if encoding:
                    b = (abs(work[0, i]) >> bit) & 1
                    encode_equiprobable(coder, b != 0)
                else:
                    b = np.int64(decode_equiprobable(coder))
                length[i] = (length[i] << 1) | b
    if not encoding:
        for i in range(m):
            work[0, i] = -length[i] if active[i] else length[i]
    return coder


@njit
def walk(base, target, max_error, encoding, coder):
    """Code one slice: base int64 (h, w), target = x - base (encoding; ignored otherwise);
    returns (decoded residuals r' int64 (h, w), coder)."""
    h, w = base.shape
    step = 2 * max_error + 1
    model = new_model(N_CONTEXTS)
    rec = np.zeros((h, w), np.int64)
    cap = max(((h + SEED_STRIDE - 1) // SEED_STRIDE) * ((w + SEED_STRIDE - 1) // SEED_STRIDE),
              ((h + 1) // 2) * ((w + 1) // 2))
    work = np.empty((5, cap), np.int64)
    seen = np.empty((2, cap), np.int64)
    pos = np.empty((3, cap), np.int64)  # y, x, prediction
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
            m = 0
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
                    pos[0, m], pos[1, m], pos[2, m] = y, x, pred
                    work[1, m] = pass_kind * CLASSES + cls
                    if encoding:
                        e = target[y, x] - pred
                        q = (abs(e) + max_error) // step
                        work[0, m] = -q if e < 0 else q
                    m += 1
            if m == 0:
                continue
            coder = _code_values(work, m, model, seen, encoding, coder)
            for i in range(m):
                rec[pos[0, i], pos[1, i]] = pos[2, i] + work[0, i] * step
        if kind == 0:
            kind = 1
        else:
            s = half
            if s <= 1:
                break
    return rec, coder
