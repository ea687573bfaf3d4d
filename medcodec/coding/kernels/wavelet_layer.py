"""Compiled walk of the wavelet layer's integer bands (:mod:`medcodec.coding.wavelet_layer`
describes the contexts and the binarization). One call codes all bands of one slice."""

from __future__ import annotations

import numpy as np

from . import njit
from .bounded_error import bit_length, magnitude_class
from .rangecoder import (cut, decode_bit, decode_equiprobable, encode_bit, encode_equiprobable, new_model,
                         probability, reserve, update)

MAX_LEN = 48
CLASSES = 12
KINDS = 4  # seed, distance-2 passes, distance-1 diagonal, distance-1 direct
GROUPS = 4  # LL, coarse details, second finest level, finest level
N_LEN = GROUPS * KINDS * CLASSES * 16
N_SIG = GROUPS * 2 * 3 * 3 * 3 * 4
SIGN_BASE = N_LEN + N_SIG
N_SIGN = GROUPS * KINDS * 9
LOW_BASE = SIGN_BASE + N_SIGN
N_LOW = 8 * 16
N_CONTEXTS = LOW_BASE + N_LOW
CHUNK = 4096  # most positions coded between model updates

# the neighbour offsets of a pass, pairs (0, 1) and (2, 3); orientation 1 swaps the pairs
_DIAG_Y, _DIAG_X = (-1, 1, -1, 1), (-1, 1, 1, -1)
_DIRECT_Y, _DIRECT_X = (-1, 1, 0, 0), (0, 0, -1, 1)


@njit
def _code_values(work, lo, hi, model, seen, encoding, coder):
    """(De)code values lo..hi-1 of a pass. work int64 (9, >= hi): [0] true q (encoding) /
    decoded q, [1] ctx_sig, [2] ctx_len, [3] ctx_sign, [4..8] scratch. Returns the coder."""
    length, dec_len, active, neg, mag = work[4], work[5], work[6], work[7], work[8]
    for i in range(lo, hi):
        length[i] = bit_length(abs(work[0, i])) if encoding else 0
        dec_len[i] = 0
        active[i] = 1
    live = hi - lo
    j = 0
    while j < MAX_LEN and live:
        if encoding:
            coder = reserve(coder, live)
        n = 0
        for i in range(lo, hi):
            if not active[i]:
                continue
            ctx = N_LEN + work[1, i] if j == 0 else work[2, i] * 16 + min(j, 15)
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
        coder = reserve(coder, hi - lo)
    n = 0
    top = 0
    for i in range(lo, hi):  # signs, in context; the model is updated even with none
        top = max(top, dec_len[i])
        neg[i] = 0
        mag[i] = 1 if dec_len[i] else 0
        if dec_len[i]:
            ctx = SIGN_BASE + work[3, i]
            if encoding:
                neg[i] = work[0, i] < 0
                encode_bit(coder, neg[i] != 0, cut(probability(model, ctx)))
            else:
                neg[i] = decode_bit(coder, cut(probability(model, ctx)))
            seen[0, n] = ctx
            seen[1, n] = neg[i]
            n += 1
    update(model, seen, n)
    for bit in range(top - 2, -1, -1):
        if encoding:
            coder = reserve(coder, hi - lo)
        n = 0
        for i in range(lo, hi):  # the bit right below the leading one, in context
            if dec_len[i] == bit + 2:
                ctx = LOW_BASE + min(work[2, i] % CLASSES, 7) * 16 + min(dec_len[i], 15)
                if encoding:
                    b = (abs(work[0, i]) >> bit) & 1
                    encode_bit(coder, b != 0, cut(probability(model, ctx)))
                else:
                    b = np.int64(decode_bit(coder, cut(probability(model, ctx))))
                seen[0, n] = ctx
                seen[1, n] = b
                n += 1
                mag[i] = (mag[i] << 1) | b
        if n:
            update(model, seen, n)
        for i in range(lo, hi):  # the others at p = 1/2
            if dec_len[i] > bit + 2:
                if encoding:
                    b = (abs(work[0, i]) >> bit) & 1
                    encode_equiprobable(coder, b != 0)
                else:
                    b = np.int64(decode_equiprobable(coder))
                mag[i] = (mag[i] << 1) | b
    if not encoding:
        for i in range(lo, hi):
            work[0, i] = -mag[i] if neg[i] else mag[i]
    return coder


@njit
def _code_band(flat, offs, shapes, band, group, orientation, parent, first_sibling, model, work, seen,
               pos, encoding, coder):
    """(De)code one band (values in ``flat`` at offs[band], row-major; read when encoding,
    written when decoding). parent: the band index of the parent (-1: none); siblings are
    bands first_sibling..band-1. Returns the coder."""
    h, w = shapes[band, 0], shapes[band, 1]
    base = offs[band]
    for stage in range(7):  # seed; 4-grid centres, edges; 2-grid centres, edges
        if stage == 0:
            oy, ox, stride, kind, diagonal, dist = 0, 0, 4, 0, False, 0
        elif stage < 4:
            oy, ox = ((2, 2), (0, 2), (2, 0))[stage - 1]
            stride, kind, diagonal, dist = 4, 1, stage == 1, 2
        else:
            oy, ox = ((1, 1), (0, 1), (1, 0))[stage - 4]
            stride, kind, diagonal, dist = 2, 2 if stage == 4 else 3, stage == 4, 1
        m = 0
        for y in range(oy, h, stride):
            for x in range(ox, w, stride):
                par = 0  # |parent| at (y // 2, x // 2), |siblings| at (y, x), clipped to their shapes
                if parent >= 0:
                    ph, pw = shapes[parent, 0], shapes[parent, 1]
                    par = abs(flat[offs[parent] + min(y // 2, ph - 1) * pw + min(x // 2, pw - 1)])
                sib = 0
                for s in range(first_sibling, band):
                    sh, sw = shapes[s, 0], shapes[s, 1]
                    sib += abs(flat[offs[s] + min(y, sh - 1) * sw + min(x, sw - 1)])
                outside = par + sib
                ext = min((1 if par > 0 else 0) + (1 if sib > 0 else 0), 2)
                total, cnt = 0, 0
                pair0, pair1, sign0, sign1 = 0, 0, 0, 0
                if kind:
                    for k in range(4):
                        kk = k ^ 2 if orientation == 1 else k
                        if diagonal:
                            dy, dx = _DIAG_Y[kk], _DIAG_X[kk]
                        else:
                            dy, dx = _DIRECT_Y[kk], _DIRECT_X[kk]
                        yy, xx = y + dy * dist, x + dx * dist
                        if 0 <= yy < h and 0 <= xx < w:
                            v = flat[base + yy * w + xx]
                            total += abs(v)
                            cnt += 1
                            if k < 2:
                                pair0 += v != 0
                                sign0 += (v > 0) - (v < 0)
                            else:
                                pair1 += v != 0
                                sign1 += (v > 0) - (v < 0)
                    act = (8 * total + cnt // 2) // max(cnt, 1) + outside
                else:
                    act = 2 * outside
                cls = magnitude_class(act, CLASSES)
                ctx_len = (group * KINDS + kind) * CLASSES + cls
                work[1, m] = ((((group * 2 + (1 if kind > 0 else 0)) * 3 + pair0) * 3 + pair1) * 3 + ext) * 4 \
                    + min(cls // 2, 3)
                work[2, m] = ctx_len
                work[3, m] = (group * KINDS + kind) * 9 + (max(-1, min(sign0, 1)) + 1) * 3 + max(-1, min(sign1, 1)) + 1
                pos[m] = base + y * w + x
                if encoding:
                    work[0, m] = flat[base + y * w + x]
                m += 1
        lo, size = 0, 16
        while lo < m:  # chunks of 16, 32, ... CHUNK positions, the model updated after each
            hi = min(lo + size, m)
            coder = _code_values(work, lo, hi, model, seen, encoding, coder)
            lo, size = hi, min(2 * size, CHUNK)
        if not encoding:
            for i in range(m):
                flat[pos[i]] = work[0, i]
    return coder


@njit
def walk(flat, offs, shapes, levels, encoding, coder):
    """(De)code all bands of one slice in order (LL, then per level LH, HL, HH; band b's
    values in flat[offs[b]:offs[b + 1]], shape shapes[b]). Returns the coder."""
    model = new_model(N_CONTEXTS)
    cap = 1
    for b in range(shapes.shape[0]):
        cap = max(cap, ((shapes[b, 0] + 1) // 2) * ((shapes[b, 1] + 1) // 2))
    work = np.empty((9, cap), np.int64)
    seen = np.empty((2, cap), np.int64)
    pos = np.empty(cap, np.int64)
    coder = _code_band(flat, offs, shapes, 0, 0, 0, -1, 0, model, work, seen, pos, encoding, coder)
    for lev in range(1, levels + 1):
        group = 3 if lev == levels else (2 if lev == levels - 1 else 1)
        for o in range(3):
            band = 1 + 3 * (lev - 1) + o
            parent = band - 3 if lev > 1 else -1
            coder = _code_band(flat, offs, shapes, band, group, o, parent, band - o, model, work, seen, pos,
                               encoding, coder)
    return coder
