"""Compiled walk of the codes' context model (:mod:`medcodec.coding.codes` describes it).

One call codes one iteration of one slice: channel by channel, four polyphase passes per
channel, every position of a pass with the probabilities the model had when the pass
began, the model updated after the pass from the (context, bit) pairs seen.
"""

from __future__ import annotations

import numpy as np

from . import njit
from .rangecoder import cut, decode_bit, encode_bit, probability, reserve, update

ENCODE, DECODE, KNOWN = 0, 1, 2  # cur holds the true bits / is filled / holds known bits
N_CONTEXTS = 3 * 3 * 15
_PHASE_Y = (0, 1, 0, 1)
_PHASE_X = (0, 1, 1, 0)


@njit
def _context(planes, has_prev, y, x, c, k):
    """The context (0..134) of bit c at (y, x) in pass k, from decoded bits only
    (planes[0]: iteration t-1, planes[1]: iteration t)."""
    h, w = planes.shape[1], planes.shape[2]
    prev, cur = planes[0], planes[1]
    p = prev[y, x, c] + 1 if has_prev else 0
    below = cur[y, x, c - 1] + 1 if c else 0
    if k == 0:
        spatial = 0
        if has_prev:
            if y > 0:
                spatial += prev[y - 1, x, c]
            if y + 1 < h:
                spatial += prev[y + 1, x, c]
            if x > 0:
                spatial += prev[y, x - 1, c]
            if x + 1 < w:
                spatial += prev[y, x + 1, c]
    elif k == 1:
        spatial = 5
        if y > 0 and x > 0:
            spatial += cur[y - 1, x - 1, c]
        if y > 0 and x + 1 < w:
            spatial += cur[y - 1, x + 1, c]
        if y + 1 < h and x > 0:
            spatial += cur[y + 1, x - 1, c]
        if y + 1 < h and x + 1 < w:
            spatial += cur[y + 1, x + 1, c]
    else:
        spatial = 10
        if y > 0:
            spatial += cur[y - 1, x, c]
        if y + 1 < h:
            spatial += cur[y + 1, x, c]
        if x > 0:
            spatial += cur[y, x - 1, c]
        if x + 1 < w:
            spatial += cur[y, x + 1, c]
    return (np.int64(p) * 3 + np.int64(below)) * 15 + np.int64(spatial)


@njit
def walk_iteration(model, planes, has_prev, active, mode, coder):
    """Visit one iteration of one slice in coding order. planes: uint8 (2, h, w, bits), 0/1:
    iteration t-1 (ignored without ``has_prev``) and iteration t (``cur``); active: uint8
    (h, w), the cells coded in this iteration (others stay 0). ``mode``: ENCODE codes cur
    into the encoder ``coder``, DECODE fills cur from the decoder ``coder``, KNOWN only
    updates the model from cur. Returns the coder (an encoder may have grown)."""
    cur = planes[1]
    h, w, bits = cur.shape
    seen = np.empty((2, ((h + 1) // 2) * ((w + 1) // 2)), np.int64)
    if mode == ENCODE:
        coder = reserve(coder, h * w * bits)
    for c in range(bits):
        for k in range(4):
            py, px = _PHASE_Y[k], _PHASE_X[k]
            if py >= h or px >= w:
                continue
            m = 0
            for y in range(py, h, 2):
                for x in range(px, w, 2):
                    if not active[y, x]:
                        continue
                    ctx = _context(planes, has_prev, y, x, c, k)
                    if mode == ENCODE:
                        bit = cur[y, x, c] != 0
                        encode_bit(coder, bit, cut(probability(model, ctx)))
                    elif mode == DECODE:
                        bit = decode_bit(coder, cut(probability(model, ctx)))
                        cur[y, x, c] = bit
                    else:
                        bit = cur[y, x, c] != 0
                    seen[0, m] = ctx
                    seen[1, m] = bit
                    m += 1
            update(model, seen, m)
    return coder
