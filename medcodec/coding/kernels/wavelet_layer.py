"""Compiled walk of the wavelet layer's integer bands (:mod:`medcodec.coding.wavelet_layer`
describes the contexts and the binarization). One call codes all bands of one slice.

Each pass of a band runs in two steps. The contexts of all its positions come first, in one
tight loop (:func:`_pass_contexts`): they read only earlier passes and bands, never the
coder. Then the pass is coded in chunks of 16, 32, ... CHUNK positions: the "q != 0" flags
of a chunk with the model frozen, then the chunk's nonzero values (:func:`_finish_chunk`).
Every batch of bits coded between two model updates is one :func:`_code_round`.
"""

from __future__ import annotations

import numpy as np

from . import njit
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
STAGES = 7  # seed; 4-grid centres, edges; 2-grid centres, edges

# magnitude class of an activity a: floor(log2(1 + a)) capped to CLASSES - 1, by table
_CLASS_CAP = (1 << (CLASSES - 1)) - 1  # the least activity of the top class
_CLASS_OF = np.array([min((a + 1).bit_length() - 1, CLASSES - 1) for a in range(_CLASS_CAP + 1)], np.int64)


@njit(inline=True)
def _at(a, i):
    """a[i] for i >= 0. An unsigned index spares numba's negative-index arithmetic, a
    good part of a context's cost."""
    return a[np.uint64(i)]


@njit(inline=True)
def _activity_class(act):
    """floor(log2(1 + act)) capped to CLASSES - 1 (0 for act < 0, which only an int64
    overflow from absurd magnitudes makes: the table is never read out of bounds)."""
    return _at(_CLASS_OF, min(max(act, 0), _CLASS_CAP))


@njit(inline=True)
def _sign(v):
    """-1, 0 or 1."""
    return (1 if v > 0 else 0) - (1 if v < 0 else 0)


@njit(inline=True)
def _mean8(total, count):
    """(8 total + count // 2) // count (0 for no neighbour): the neighbours' mean in
    eighths, rounded. The usual counts by shifts and a division by a constant."""
    if count == 4:
        return (8 * total + 2) >> 2
    if count == 2:
        return (8 * total + 1) >> 1
    if count == 3:
        return (8 * total + 1) // 3
    return 8 * total  # count 1, or 0 with total 0


@njit
def _stage(stage):
    """(row, column of the first position, stride, pass kind, diagonal neighbours?,
    neighbour distance) of pass ``stage``."""
    if stage == 0:
        return 0, 0, 4, 0, False, 0
    if stage < 4:
        oy, ox = ((2, 2), (0, 2), (2, 0))[stage - 1]
        return oy, ox, 4, 1, stage == 1, 2
    oy, ox = ((1, 1), (0, 1), (1, 0))[stage - 4]
    return oy, ox, 2, 2 if stage == 4 else 3, stage == 4, 1


@njit
def _pass_contexts(flat, offs, shapes, band, parent, first_sibling, group, orientation, stage, out):
    """The contexts of every position of one pass of ``band``, in coding order (row-major
    over the pass's grid), into ``out`` int64 (4, >= positions): [0] the position in flat,
    [1] the "q != 0" context, [2] the length context, [3] the sign context. Returns the
    number of positions.

    Activity: the mean |value| of the decoded neighbours at the pass's distance (in
    eighths), plus |parent| at (y // 2, x // 2) and |siblings| at (y, x), both clipped to
    their bands (the seed pass: twice parent and siblings). Neighbours come in two pairs
    (along / across the band's edges; orientation 1 swaps them). Positions whose
    neighbours are all inside the band take a path without bounds checks."""
    h, w = shapes[band, 0], shapes[band, 1]
    base = offs[band]
    oy, ox, stride, kind, diagonal, d = _stage(stage)
    if oy >= h or ox >= w:
        return 0
    has_parent = parent >= 0
    ph, pw = (shapes[parent, 0], shapes[parent, 1]) if has_parent else (1, 1)
    p_base = offs[parent] if has_parent else 0
    siblings = band - first_sibling  # 0, 1 or 2, bands first_sibling, first_sibling + 1
    s0, s1 = first_sibling, first_sibling + (1 if siblings > 1 else 0)
    h0, w0, h1, w1 = shapes[s0, 0], shapes[s0, 1], shapes[s1, 0], shapes[s1, 1]
    # the four neighbours (dy, dx): pair 0 is k = 0, 1, pair 1 is k = 2, 3
    if diagonal:
        pair_a, pair_b = ((-d, -d), (d, d)), ((-d, d), (d, -d))
    else:
        pair_a, pair_b = ((-d, 0), (d, 0)), ((0, -d), (0, d))
    if orientation == 1:
        pair_a, pair_b = pair_b, pair_a
    (dy0, dx0), (dy1, dx1) = pair_a
    (dy2, dx2), (dy3, dx3) = pair_b
    step0, step1, step2, step3 = dy0 * w + dx0, dy1 * w + dx1, dy2 * w + dx2, dy3 * w + dx3
    kind_sig = N_LEN + (group * 2 + (1 if kind > 0 else 0)) * 3 * 3 * 3 * 4
    kind_len = (group * KINDS + kind) * CLASSES
    kind_sign = SIGN_BASE + (group * KINDS + kind) * 9
    n = 0
    for y in range(oy, h, stride):
        row = base + y * w
        parent_row = p_base + min(y >> 1, ph - 1) * pw
        row0, row1 = offs[s0] + min(y, h0 - 1) * w0, offs[s1] + min(y, h1 - 1) * w1
        in0, in1 = 0 <= y + dy0 < h, 0 <= y + dy1 < h  # the neighbours' rows inside the band
        in2, in3 = 0 <= y + dy2 < h, 0 <= y + dy3 < h
        all_rows = in0 and in1 and in2 and in3
        for x in range(ox, w, stride):
            par = abs(_at(flat, parent_row + min(x >> 1, pw - 1))) if has_parent else 0
            sib = 0
            if siblings > 0:
                sib = abs(_at(flat, row0 + min(x, w0 - 1)))
            if siblings > 1:
                sib += abs(_at(flat, row1 + min(x, w1 - 1)))
            outside = par + sib
            ext = (1 if par > 0 else 0) + (1 if sib > 0 else 0)
            at = row + x
            if kind == 0:
                act = 2 * outside
                pair0, pair1, sign0, sign1 = 0, 0, 0, 0
            else:
                if all_rows and d <= x < w - d:
                    v0, v1, v2, v3 = _at(flat, at + step0), _at(flat, at + step1), _at(flat, at + step2), \
                        _at(flat, at + step3)
                    count = 4
                else:
                    ok0 = in0 and 0 <= x + dx0 < w
                    ok1 = in1 and 0 <= x + dx1 < w
                    ok2 = in2 and 0 <= x + dx2 < w
                    ok3 = in3 and 0 <= x + dx3 < w
                    v0 = _at(flat, at + step0) if ok0 else 0
                    v1 = _at(flat, at + step1) if ok1 else 0
                    v2 = _at(flat, at + step2) if ok2 else 0
                    v3 = _at(flat, at + step3) if ok3 else 0
                    count = (1 if ok0 else 0) + (1 if ok1 else 0) + (1 if ok2 else 0) + (1 if ok3 else 0)
                act = _mean8(abs(v0) + abs(v1) + abs(v2) + abs(v3), count) + outside
                pair0 = (1 if v0 != 0 else 0) + (1 if v1 != 0 else 0)
                pair1 = (1 if v2 != 0 else 0) + (1 if v3 != 0 else 0)
                sign0 = max(-1, min(_sign(v0) + _sign(v1), 1))
                sign1 = max(-1, min(_sign(v2) + _sign(v3), 1))
            cls = _activity_class(act)
            slot = np.uint64(n)
            out[0, slot] = at
            out[1, slot] = kind_sig + ((pair0 * 3 + pair1) * 3 + ext) * 4 + min(cls >> 1, 3)
            out[2, slot] = kind_len + cls
            out[3, slot] = kind_sign + (sign0 + 1) * 3 + sign1 + 1
            n += 1
    return n


@njit
def _code_round(model, memo, seen, n, encoding, coder):
    """(De)code n bits with the model frozen, contexts in seen[0, :n] and bits in
    seen[1, :n] (read when encoding, written when decoding; the coder has room), then
    update the model.

    The division in :func:`probability` is most of what a bit costs, so each context's
    cut is kept in ``memo`` (uint64: [epoch, then (epoch, cut) per context]) until the
    update. No function with a bit loop rebinds ``coder`` (``reserve`` is left to
    :func:`_code_band`): numba reference-counts a rebound array at each use, ~20 ns a bit."""
    epoch = memo[0]
    for t in range(n):
        at = 1 + 2 * seen[0, t]
        if memo[at] != epoch:
            memo[at] = epoch
            memo[at + 1] = cut(probability(model, seen[0, t]))
        if encoding:
            encode_bit(coder, seen[1, t] != 0, memo[at + 1])
        else:
            seen[1, t] = decode_bit(coder, memo[at + 1])
    update(model, seen, n)
    memo[0] = epoch + np.uint64(1)


@njit
def _finish_chunk(chunk, nnz, model, memo, seen, encoding, coder):
    """Code the nnz nonzero values of a chunk whose "q != 0" flags are coded (the model
    updated): their bit lengths (flags "L > j", j >= 1), signs and low bits. chunk int64
    (8, >= nnz): [0] position in flat, [1] length context, [2] sign context, [3] |q|
    (encoding; decoding: filled), [4] bit length (filled), [5] sign (encoding; decoding:
    filled), [6], [7] scratch."""
    ctx_len, ctx_sign, magnitude, length, negative = chunk[1], chunk[2], chunk[3], chunk[4], chunk[5]
    live, first = chunk[6], chunk[7]
    for i in range(nnz):
        length[i] = 1
        live[i] = i
    n_live = nnz  # those whose length is not known: live[:n_live], in chunk order
    j = 1
    while j < MAX_LEN and n_live:
        for t in range(n_live):
            i = live[t]
            seen[0, t] = ctx_len[i] * 16 + min(j, 15)
            if encoding:
                seen[1, t] = (magnitude[i] >> j) != 0  # bit length > j
        _code_round(model, memo, seen, n_live, encoding, coder)
        kept = 0
        for t in range(n_live):
            i = live[t]
            live[kept] = i  # kept <= t: rewritten in place
            kept += seen[1, t]
            length[i] += seen[1, t]
        n_live = kept
        j += 1
    top = 0
    for i in range(nnz):  # signs, in context; the model is updated even with none
        top = max(top, length[i])
        seen[0, i] = ctx_sign[i]
        seen[1, i] = negative[i]
    _code_round(model, memo, seen, nnz, encoding, coder)
    if not encoding:
        for i in range(nnz):
            negative[i] = seen[1, i]
            magnitude[i] = 1  # the leading one; the bits below follow
    n_long = 0  # those with low bits: live[:n_long], in chunk order
    for i in range(nnz):
        if length[i] > 1:
            live[n_long] = i
            n_long += 1
    for bit in range(top - 2, -1, -1):
        n = 0
        for t in range(n_long):  # the bit right below the leading one, in context
            i = live[t]
            if length[i] == bit + 2:
                first[n] = i
                seen[0, n] = LOW_BASE + min(ctx_len[i] % CLASSES, 7) * 16 + min(length[i], 15)
                seen[1, n] = (magnitude[i] >> bit) & 1
                n += 1
        if n:
            _code_round(model, memo, seen, n, encoding, coder)
            if not encoding:
                for t in range(n):
                    magnitude[first[t]] = (magnitude[first[t]] << 1) | seen[1, t]
        for t in range(n_long):  # the others at p = 1/2
            i = live[t]
            if length[i] > bit + 2:
                if encoding:
                    encode_equiprobable(coder, (magnitude[i] >> bit) & 1 != 0)
                else:
                    magnitude[i] = (magnitude[i] << 1) | np.int64(decode_equiprobable(coder))


@njit
def _chunk_bits(flat, contexts, start, stop):
    """At most how many bits positions start..stop of a pass code: a flag each, and for
    a nonzero q of bit length L at most L length flags, a sign and L - 1 low bits."""
    bits = stop - start
    for t in range(start, stop):
        v = abs(flat[contexts[0, t]])
        while v:
            bits += 2
            v >>= 1
    return bits


@njit
def _code_chunk(flat, contexts, start, stop, model, memo, chunk, seen, encoding, coder):
    """(De)code positions start..stop of a pass (their contexts in ``contexts``, see
    :func:`_pass_contexts`; the coder has room): the "q != 0" flags with the model
    frozen, the update, then the nonzero values; decoding writes those to flat (the
    zeros stay)."""
    m = stop - start
    for t in range(m):
        seen[0, t] = contexts[1, start + t]
        if encoding:
            seen[1, t] = flat[contexts[0, start + t]] != 0
    _code_round(model, memo, seen, m, encoding, coder)
    nnz = 0
    for t in range(m):
        at = contexts[0, start + t]
        chunk[0, nnz] = at  # written always, kept for a nonzero
        chunk[1, nnz] = contexts[2, start + t]
        chunk[2, nnz] = contexts[3, start + t]
        if encoding:
            chunk[3, nnz] = abs(flat[at])
            chunk[5, nnz] = flat[at] < 0
        nnz += seen[1, t]
    _finish_chunk(chunk, nnz, model, memo, seen, encoding, coder)
    if not encoding:
        for i in range(nnz):
            flat[chunk[0, i]] = -chunk[3, i] if chunk[5, i] else chunk[3, i]


@njit
def _code_band(flat, offs, shapes, band, group, orientation, parent, first_sibling, model, memo, contexts,
               chunk, seen, encoding, coder):
    """(De)code one band (values in ``flat`` at offs[band], row-major; read when encoding,
    written when decoding). parent: the band index of the parent (-1: none); siblings are
    bands first_sibling..band-1. Each pass in chunks of 16, 32, ... CHUNK positions.
    Returns the coder."""
    for stage in range(STAGES):
        m = _pass_contexts(flat, offs, shapes, band, parent, first_sibling, group, orientation, stage, contexts)
        start, size = 0, 16
        while start < m:
            stop = min(start + size, m)
            if encoding:
                coder = reserve(coder, _chunk_bits(flat, contexts, start, stop))
            _code_chunk(flat, contexts, start, stop, model, memo, chunk, seen, encoding, coder)
            start, size = stop, min(2 * size, CHUNK)
    return coder


@njit
def walk(flat, offs, shapes, levels, encoding, coder):
    """(De)code all bands of one slice in order (LL, then per level LH, HL, HH; band b's
    values in flat[offs[b]:offs[b + 1]], shape shapes[b]). Returns the coder."""
    model = new_model(N_CONTEXTS)
    memo = np.zeros(1 + 2 * N_CONTEXTS, np.uint64)
    memo[0] = 1
    most = 1  # positions of the longest pass: a 2-grid of the largest band
    for b in range(shapes.shape[0]):
        most = max(most, ((shapes[b, 0] + 1) // 2) * ((shapes[b, 1] + 1) // 2))
    contexts = np.empty((4, most), np.int64)
    chunk = np.empty((8, CHUNK), np.int64)
    seen = np.empty((2, CHUNK), np.int64)
    for band in range(shapes.shape[0]):  # one call site: no copy compiled for literal arguments
        lev, o = (band + 2) // 3, (band - 1) % 3 if band else 0  # level (0: LL), orientation
        group = 0 if lev == 0 else (3 if lev == levels else (2 if lev == levels - 1 else 1))
        parent = band - 3 if lev > 1 else -1
        coder = _code_band(flat, offs, shapes, band, group, o, parent, band - o, model, memo, contexts, chunk, seen,
                           encoding, coder)
    return coder


@njit
def dequantize(flat, offs, steps, rho):
    """Integer bands laid end to end (as :func:`walk` has them) -> float64 coefficients
    sign(q) (|q| + rho) steps[b], the operations of the numpy ``dequantize`` in its order."""
    out = np.empty(flat.size, np.float64)
    for b in range(offs.size - 1):
        step = steps[b]
        for i in range(offs[b], offs[b + 1]):
            q = flat[i]
            sign = 1.0 if q > 0 else (-1.0 if q < 0 else 0.0)
            out[i] = sign * (abs(q) + rho) * step
    return out


@njit
def quantize(coeffs, offs, shapes, scales, tau, weak_below, max_q):
    """Wavelet coefficients laid end to end (float64, the layout of :func:`walk`) -> int64
    integers, the operations of the numpy ``quantize`` in its order: per band b,
    q = sign(c) floor(|c| scales[b] + tau), clipped to +-max_q; then, in detail bands, a
    q of +-1 with no nonzero among its 8 neighbours (before this rule) and a zero parent
    (the band 3 before, at (y // 2, x // 2), clipped; none on the coarsest level), whose
    |c| scales[b] is below ``weak_below``, becomes 0. Loops run over per-band views (an
    index numba cannot prove non-negative costs 5x here)."""
    out = np.empty(coeffs.size, np.int64)
    fmax = float(max_q)
    for b in range(offs.size - 1):
        s = scales[b]
        src, dst = coeffs[offs[b]:offs[b + 1]], out[offs[b]:offs[b + 1]]
        for i in range(src.size):
            c = src[i]
            f = min(np.floor(abs(c) * s + tau), fmax)
            dst[i] = np.int64(f) if c > 0 else (-np.int64(f) if c < 0 else 0)
    weak = np.zeros(coeffs.size, np.bool_)
    for b in range(1, offs.size - 1):
        h, w, s = shapes[b, 0], shapes[b, 1], scales[b]
        q, c, isolated = out[offs[b]:offs[b + 1]], coeffs[offs[b]:offs[b + 1]], weak[offs[b]:offs[b + 1]]
        has_parent = b > 3  # the coarsest level's bands are 1..3
        parent = out[offs[b - 3]:offs[b - 2]] if has_parent else out[0:1]
        ph, pw = (shapes[b - 3, 0], shapes[b - 3, 1]) if has_parent else (1, 1)
        for y in range(h):
            for x in range(w):
                at = y * w + x
                if abs(_at(q, at)) != 1 or not abs(_at(c, at)) * s < weak_below:
                    continue
                if has_parent and _at(parent, min(y >> 1, ph - 1) * pw + min(x >> 1, pw - 1)) != 0:
                    continue
                alone = True
                for yy in range(max(y - 1, 0), min(y + 2, h)):
                    for xx in range(max(x - 1, 0), min(x + 2, w)):
                        if (yy != y or xx != x) and _at(q, yy * w + xx) != 0:
                            alone = False
                isolated[np.uint64(at)] = alone
        for i in range(q.size):  # after the band: its neighbours were read before the rule
            if isolated[i]:
                q[i] = 0
    return out


@njit
def finish(base, residual, lo, hi, rounding, out):
    """out = base + residual (float64), clipped to [lo, hi], rounded half to even when
    ``rounding``, cast to out's type: the numpy ``finish`` element by element. base (h, w)
    of any layout (a broadcast constant base too), residual float64 (h, w)."""
    h, w = base.shape
    for y in range(h):
        for x in range(w):
            v = min(max(np.float64(base[y, x]) + residual[y, x], lo), hi)
            out[y, x] = np.rint(v) if rounding else v
