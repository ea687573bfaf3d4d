"""Compiled range coder and adaptive binary models: the integer arithmetic of every stream.

A bit-exact re-implementation of what medcodec's streams have always been:
``constriction``'s queue ``RangeEncoder`` / ``RangeDecoder`` (32-bit words, 64-bit state)
coding Bernoulli symbols whose model is ``Bernoulli(perfect=False)`` (constriction's "fast"
quantization to 24-bit fixed point), with P(bit = 1) = q / 2^16 from integer counts.
constriction stays the oracle: ``tests/coding/test_kernels_rangecoder.py`` compares streams.

State lives in arrays the layer kernels keep as locals:

- a coder is one uint64 array, state then words (:func:`new_encoder`, :func:`new_decoder`);
  a decoder flags words that no encoder writes (:func:`failed`: Python raises
  ContainerError);
- a model is one int64 array: counts per context and what the halving rule needs
  (:func:`new_model`); a layer records the (context, bit) pairs it codes between updates
  in ``seen`` and hands them to :func:`update`.

Everything is explicitly unsigned 64-bit where constriction is: numba turns a mix of int64
and uint64 into float64, so every constant the coder state meets is a ``np.uint64``.
"""

from __future__ import annotations

import numpy as np

from . import njit

COUNT_LIMIT = 1024  # counts are halved above this, so the model keeps adapting
PROB_BITS = 16
PROB_MIN = 16  # probabilities stay in [16, 65520] / 65536: no symbol is ever impossible

_U0 = np.uint64(0)
_U1 = np.uint64(1)
_PRECISION = np.uint64(24)  # constriction's DefaultContiguousCategoricalEntropyModel
_TOTAL = np.uint64(1 << 24)
_WORD_BITS = np.uint64(32)
_WORD_MAX = np.uint64(0xFFFFFFFF)
_STATE_MAX = np.uint64(0xFFFFFFFFFFFFFFFF)
_LOW_RANGE = np.uint64(1 << 32)  # range below this: emit a word
_Q_ONE = np.uint64(1 << PROB_BITS)
_Q_HALF = np.uint64(1 << (PROB_BITS - 1))
_CUT_SCALE = np.uint64(256)  # 2^24 / 2^16


@njit
def cut(q):
    """Width of symbol 0's interval (of 2^24) for P(bit = 1) = q / 2^16, q in [1, 65535].

    constriction: cdf[1] = floor((1 - p) (2^24 - 2)) + 1, in float64, which for p = q/2^16 is
    exact: with m = 2^16 - q, (1 - p)(2^24 - 2) = 256 m - m / 2^15."""
    m = _Q_ONE - np.uint64(q)
    return _CUT_SCALE * m - (_U1 if m > _Q_HALF else _U0)


# --- the adaptive models -------------------------------------------------------------------
# A model is one int64 array: [pending count, update epoch, contexts n, 0], then counts
# (n0, n1) per context, a mark per context (the epoch it was last looked at) and the
# pending list (contexts still over the limit after their last halving).

_MODEL_HEAD = 4


@njit
def new_model(n):
    """A model of ``n`` contexts, counts from a Laplace start (1, 1)."""
    model = np.zeros(_MODEL_HEAD + 4 * n, np.int64)
    model[2] = n
    model[_MODEL_HEAD:_MODEL_HEAD + 2 * n] = 1
    return model


@njit
def probability(model, ctx):
    """q = P(bit = 1) * 2^16 of context ``ctx``, clipped to [PROB_MIN, 2^16 - PROB_MIN]."""
    n0 = model[_MODEL_HEAD + 2 * ctx]
    n1 = model[_MODEL_HEAD + 2 * ctx + 1]
    q = ((2 * n1 + 1) << PROB_BITS) // (2 * (n0 + n1) + 2)
    return min(max(q, PROB_MIN), (1 << PROB_BITS) - PROB_MIN)


@njit
def update(model, seen, m):
    """Count the m bits ``seen`` (int64 (2, >= m): contexts, bits), then halve once every
    context whose total is over :data:`COUNT_LIMIT` (touched now, or still over after its
    last halving), as the models have always done."""
    for i in range(m):
        model[_MODEL_HEAD + 2 * seen[0, i] + seen[1, i]] += 1
    model[1] += 1
    epoch, n = model[1], model[2]
    marks, pending = _MODEL_HEAD + 2 * n, _MODEL_HEAD + 3 * n
    kept = 0
    for k in range(model[0] + m):  # the pending contexts, then the touched ones
        c = model[pending + k] if k < model[0] else seen[0, k - model[0]]
        if model[marks + c] == epoch:  # each context looked at once
            continue
        model[marks + c] = epoch
        at = _MODEL_HEAD + 2 * c
        if model[at] + model[at + 1] > COUNT_LIMIT:
            model[at] = (model[at] + 1) >> 1
            model[at + 1] = (model[at + 1] + 1) >> 1
            if model[at] + model[at + 1] > COUNT_LIMIT:
                model[pending + kept] = c  # kept <= k: the list is rewritten in place
                kept += 1
    model[0] = kept


# --- the coders ----------------------------------------------------------------------------
# A coder is one uint64 array (helpers that take two arrays pay numba's reference counting
# on every call, ~30 ns a bit): state in [0, 8), words from HEAD on.

HEAD = 8


@njit
def new_encoder(capacity):
    """An empty encoder with room for ``capacity`` words: [lower, range, held-back
    (inverted) word count, first held word, next word index, ...] + words."""
    coder = np.zeros(HEAD + max(capacity, 16), np.uint64)
    coder[1] = _STATE_MAX
    coder[4] = np.uint64(HEAD)
    return coder


@njit
def reserve(coder, bits):
    """``coder``, grown if it has no room for ``bits`` more bits (each emits at most one
    word, plus the words held back): call before coding them, use what it returns."""
    need = np.int64(coder[4] + coder[2]) + bits + 2
    if need <= coder.size:
        return coder
    grown = np.zeros(max(need, 2 * coder.size), np.uint64)
    grown[:coder.size] = coder
    return grown


@njit
def _put(coder, word):
    n = coder[4]
    coder[np.int64(n)] = word
    coder[4] = n + _U1


@njit
def encode_bit(coder, bit, c):
    """Code one bit with symbol 0's width ``c`` (:func:`cut`); needs room (:func:`reserve`)."""
    lower = coder[0]
    scale = coder[1] >> _PRECISION
    if bit:
        rng = scale * (_TOTAL - c)
        new_lower = lower + scale * c
    else:
        rng = scale * c
        new_lower = lower
    if coder[2] != _U0 and new_lower + rng > new_lower:  # inverted -> normal: flush held words
        if new_lower < lower:
            first, rest = (coder[3] + _U1) & _WORD_MAX, _U0
        else:
            first, rest = coder[3], _WORD_MAX
        _put(coder, first)
        for _ in range(np.int64(coder[2]) - 1):
            _put(coder, rest)
        coder[2] = _U0
    lower = new_lower
    if rng < _LOW_RANGE:
        rng = rng << _WORD_BITS
        word = lower >> _WORD_BITS
        lower = lower << _WORD_BITS
        if coder[2] != _U0:
            coder[2] += _U1
        elif lower + rng > lower:
            _put(coder, word)
        else:
            coder[2] = _U1
            coder[3] = word
    coder[0] = lower
    coder[1] = rng


@njit
def encode_equiprobable(coder, bit):
    """Code one bit at p = 1/2."""
    encode_bit(coder, bit, _TOTAL >> _U1)


@njit
def finish(coder):
    """The stream (uint32 words): those written plus the sealing words (none for an empty
    stream), as constriction's ``get_compressed`` returns them. Leaves the coder usable."""
    n = np.int64(coder[4]) - HEAD
    held = np.int64(coder[2])
    out = np.empty(n + held + 2, np.uint32)
    out[:n] = coder[HEAD:HEAD + n]
    if coder[1] == _STATE_MAX:
        return out[:n].copy()
    lower = coder[0]
    point = lower + (_LOW_RANGE - _U1)
    if held:
        if point >= lower:
            first, rest = coder[3], _WORD_MAX
        else:
            first, rest = (coder[3] + _U1) & _WORD_MAX, _U0
        out[n] = np.uint32(first)
        n += 1
        for _ in range(held - 1):
            out[n] = np.uint32(rest)
            n += 1
    point_word = point >> _WORD_BITS
    out[n] = np.uint32(point_word)
    n += 1
    if ((lower + coder[1]) >> _WORD_BITS) == point_word:
        out[n] = 0
        n += 1
    return out[:n].copy()


@njit
def new_decoder(words):
    """A decoder over ``words`` (uint32): [lower, range, point, next word index, error
    flag, end index, ...] + words; the point is read from the first two words."""
    coder = np.zeros(HEAD + words.size, np.uint64)
    coder[HEAD:] = words
    coder[1] = _STATE_MAX
    point = _U0
    read = 0
    while read < 2 and read < words.size:
        point = (point << _WORD_BITS) | np.uint64(words[read])
        read += 1
    if read == 1:
        point = point << _WORD_BITS
    coder[2] = point
    coder[3] = np.uint64(HEAD + read)
    coder[5] = np.uint64(coder.size)
    return coder


@njit
def decode_bit(coder, c):
    """Read one bit with symbol 0's width ``c``; flags the coder (:func:`failed`) for words
    that no encoder writes, and goes on with some bit."""
    lower = coder[0]
    point = coder[2]
    scale = coder[1] >> _PRECISION
    offset = point - lower  # constriction: quantile = offset // scale, compared with c
    if offset >= scale * _TOTAL:
        coder[4] = _U1
    if offset < scale * c:
        bit = False
        rng = scale * c
    else:
        bit = True
        lower = lower + scale * c
        rng = scale * (_TOTAL - c)
    if rng < _LOW_RANGE:
        lower = lower << _WORD_BITS
        rng = rng << _WORD_BITS
        point = point << _WORD_BITS
        pos = coder[3]
        if pos < coder[5]:
            point = point | coder[np.int64(pos)]
            coder[3] = pos + _U1
    coder[0] = lower
    coder[1] = rng
    coder[2] = point
    return bit


@njit
def decode_equiprobable(coder):
    """Read one bit at p = 1/2."""
    return decode_bit(coder, _TOTAL >> _U1)


@njit
def failed(coder):
    """True when the decoder met words that no encoder of this kind writes."""
    return coder[4] != _U0


# --- batch entry points (for the differential tests and simple callers) -----------------------

@njit
def encode_bits(bits, q):
    """Range-code ``bits`` (uint8) with P(1) = q / 2^16 (int64, same length): the words."""
    coder = reserve(new_encoder(16), bits.size)
    for i in range(bits.size):
        encode_bit(coder, bits[i] != 0, cut(q[i]))
    return finish(coder)


@njit
def decode_bits(words, q):
    """Inverse of :func:`encode_bits`: (bits uint8, ok)."""
    coder = new_decoder(words)
    out = np.empty(q.size, np.uint8)
    for i in range(q.size):
        out[i] = decode_bit(coder, cut(q[i]))
    return out, not failed(coder)
