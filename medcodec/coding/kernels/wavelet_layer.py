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
def _finish_chunk(chunk, n, nnz, model, seen, encoding, coder):
    """Code the rest of a chunk whose "q != 0" flags are coded (their n (context, bit)
    pairs in ``seen``): update the model, then give the chunk's nnz nonzero values their
    bit lengths (flags "L > j", j >= 1), signs and low bits. chunk int64 (6, >= nnz): [0]
    position in flat, [1] ctx_len, [2] ctx_sign, [3] |q| (encoding; decoding: filled),
    [4] bit length so far, [5] sign (encoding; decoding: filled). Returns the coder."""
    if n:
        update(model, seen, n)
    ctx_len, ctx_sign, magnitude, length, negative = chunk[1], chunk[2], chunk[3], chunk[4], chunk[5]
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
            ctx = ctx_len[i] * 16 + min(j, 15)
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
    for i in range(nnz):  # signs, in context; the model is updated even with none
        top = max(top, length[i])
        ctx = SIGN_BASE + ctx_sign[i]
        if encoding:
            encode_bit(coder, negative[i] != 0, cut(probability(model, ctx)))
        else:
            negative[i] = decode_bit(coder, cut(probability(model, ctx)))
            magnitude[i] = 1  # the leading one; the bits below follow
        seen[0, i] = ctx
        seen[1, i] = negative[i]
    update(model, seen, nnz)
    for bit in range(top - 2, -1, -1):
        if encoding:
            coder = reserve(coder, nnz)
        n = 0
        for i in range(nnz):  # the bit right below the leading one, in context
            if length[i] == bit + 2:
                ctx = LOW_BASE + min(ctx_len[i] % CLASSES, 7) * 16 + min(length[i], 15)
                if encoding:
                    b = (magnitude[i] >> bit) & 1
                    encode_bit(coder, b != 0, cut(probability(model, ctx)))
                else:
                    b = np.int64(decode_bit(coder, cut(probability(model, ctx))))
                    magnitude[i] = (magnitude[i] << 1) | b
                seen[0, n] = ctx
                seen[1, n] = b
                n += 1
        if n:
            update(model, seen, n)
        for i in range(nnz):  # the others at p = 1/2
            if length[i] > bit + 2:
                if encoding:
                    encode_equiprobable(coder, (magnitude[i] >> bit) & 1 != 0)
                else:
                    magnitude[i] = (magnitude[i] << 1) | np.int64(decode_equiprobable(coder))
    return coder


@njit
def _code_band(flat, offs, shapes, band, group, orientation, parent, first_sibling, model, chunk, seen,
               encoding, coder):
    """(De)code one band (values in ``flat`` at offs[band], row-major; read when encoding,
    written when decoding). parent: the band index of the parent (-1: none); siblings are
    bands first_sibling..band-1. Each pass in chunks of 16, 32, ... CHUNK positions: the
    "q != 0" flags of a chunk are coded as its contexts are formed, then the chunk's
    nonzero values (:func:`_finish_chunk`). Returns the coder."""
    h, w = shapes[band, 0], shapes[band, 1]
    base = offs[band]
    ph, pw = (shapes[parent, 0], shapes[parent, 1]) if parent >= 0 else (1, 1)
    p_base = offs[parent] if parent >= 0 else 0
    for stage in range(7):  # seed; 4-grid centres, edges; 2-grid centres, edges
        if stage == 0:
            oy, ox, stride, kind, diagonal, dist = 0, 0, 4, 0, False, 0
        elif stage < 4:
            oy, ox = ((2, 2), (0, 2), (2, 0))[stage - 1]
            stride, kind, diagonal, dist = 4, 1, stage == 1, 2
        else:
            oy, ox = ((1, 1), (0, 1), (1, 0))[stage - 4]
            stride, kind, diagonal, dist = 2, 2 if stage == 4 else 3, stage == 4, 1
        if oy >= h or ox >= w:
            continue
        size, n, nnz = 16, 0, 0
        if encoding:
            coder = reserve(coder, CHUNK)
        for y in range(oy, h, stride):
            for x in range(ox, w, stride):
                par = 0  # |parent| at (y // 2, x // 2), |siblings| at (y, x), clipped to their shapes
                if parent >= 0:
                    par = abs(flat[p_base + min(y >> 1, ph - 1) * pw + min(x >> 1, pw - 1)])
                sib = 0
                for s in range(first_sibling, band):
                    sh, sw = shapes[s, 0], shapes[s, 1]
                    sib += abs(flat[offs[s] + min(y, sh - 1) * sw + min(x, sw - 1)])
                outside = par + sib
                ext = (1 if par > 0 else 0) + (1 if sib > 0 else 0)
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
                ctx = N_LEN + ((((group * 2 + (1 if kind > 0 else 0)) * 3 + pair0) * 3 + pair1) * 3 + ext) * 4 \
                    + min(cls // 2, 3)
                at = base + y * w + x
                if encoding:
                    flag = flat[at] != 0
                    encode_bit(coder, flag, cut(probability(model, ctx)))
                else:
                    flag = decode_bit(coder, cut(probability(model, ctx)))
                seen[0, n] = ctx
                seen[1, n] = flag
                n += 1
                if flag:
                    chunk[0, nnz] = at
                    chunk[1, nnz] = (group * KINDS + kind) * CLASSES + cls
                    chunk[2, nnz] = (group * KINDS + kind) * 9 + (max(-1, min(sign0, 1)) + 1) * 3 \
                        + max(-1, min(sign1, 1)) + 1
                    if encoding:
                        chunk[3, nnz] = abs(flat[at])
                        chunk[5, nnz] = flat[at] < 0
                    nnz += 1
                if n == size:
                    coder = _finish_chunk(chunk, n, nnz, model, seen, encoding, coder)
                    _store(flat, chunk, nnz, encoding)
                    size, n, nnz = min(2 * size, CHUNK), 0, 0
                    if encoding:
                        coder = reserve(coder, CHUNK)
        if n:
            coder = _finish_chunk(chunk, n, nnz, model, seen, encoding, coder)
            _store(flat, chunk, nnz, encoding)
    return coder


@njit
def _store(flat, chunk, nnz, encoding):
    """Decoding: put a chunk's nonzero values in their places (the others stay 0)."""
    if not encoding:
        for i in range(nnz):
            flat[chunk[0, i]] = -chunk[3, i] if chunk[5, i] else chunk[3, i]


@njit
def walk(flat, offs, shapes, levels, encoding, coder):
    """(De)code all bands of one slice in order (LL, then per level LH, HL, HH; band b's
    values in flat[offs[b]:offs[b + 1]], shape shapes[b]). Returns the coder."""
    model = new_model(N_CONTEXTS)
    chunk = np.empty((6, CHUNK), np.int64)
    seen = np.empty((2, CHUNK), np.int64)
    coder = _code_band(flat, offs, shapes, 0, 0, 0, -1, 0, model, chunk, seen, encoding, coder)
    for lev in range(1, levels + 1):
        group = 3 if lev == levels else (2 if lev == levels - 1 else 1)
        for o in range(3):
            band = 1 + 3 * (lev - 1) + o
            parent = band - 3 if lev > 1 else -1
            coder = _code_band(flat, offs, shapes, band, group, o, parent, band - o, model, chunk, seen,
                               encoding, coder)
    return coder
