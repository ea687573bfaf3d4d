"""Bounded-error residual layer: near-lossless (|error| <= E) and lossless (E = 0) coding.

After the learned iterations, the residual r = x - base of every pixel (integers in the
image's own units; ``base`` is the decoder's reconstruction rounded to the pixel type) is
quantized with step 2E+1: q = sign(r) * floor((|r| + E) / (2E + 1)), so base + q (2E+1)
is within E of x. q is coded losslessly, all in integer arithmetic with exact Bernoulli
probabilities (see :mod:`medcodec.entropy` for why): per slice, four polyphase passes as
for the codes; each q is binarized as its bit length L (unary flags "L > j"), a sign bit and
the L-1 bits below its leading one. The flags' context is (pass kind, magnitude class of the
already decoded neighbours or, in the first pass, of the base image's local gradient, j);
signs and low bits are sent at p = 1/2. Counts adapt per slice as in the code model.

The base comes from a floating-point network, which may differ by a unit between machines
(CPU vs GPU); the container stores a CRC32 of the base and of the final slice so a decoder
that computes a different base refuses the file instead of returning a wrong image.
"""

from __future__ import annotations

import numpy as np

from .errors import ContainerError

_MAX_LEN = 40  # bit length of |q| for any 32-bit image
_CLASSES = 12
_KINDS = 3
_PHASES = ((0, 0), (1, 1), (0, 1), (1, 0))
_N_CTX = _KINDS * _CLASSES * 16


def quantize(x: np.ndarray, base: np.ndarray, max_error: int) -> np.ndarray:
    """Quantized residual (int64) with |x - reconstruct(base, q)| <= max_error."""
    r = x.astype(np.int64) - base.astype(np.int64)
    step = 2 * max_error + 1
    return np.sign(r) * ((np.abs(r) + max_error) // step)


def reconstruct(base: np.ndarray, q: np.ndarray, max_error: int, dtype) -> np.ndarray:
    """base + q (2E+1), clipped to the pixel type (which only moves it closer to x)."""
    v = base.astype(np.int64) + q * (2 * max_error + 1)
    info = np.iinfo(dtype)
    return np.clip(v, info.min, info.max).astype(dtype)


def _magnitude_class(v: np.ndarray) -> np.ndarray:
    """floor(log2(1 + v)) capped to the class count (integer arithmetic)."""
    v = np.asarray(v, np.int64)
    out = np.zeros(v.shape, np.int64)
    for k in range(1, _CLASSES):
        out += v >= (1 << k) - 1
    return out


def _bit_length(a: np.ndarray) -> np.ndarray:
    out = np.zeros(a.shape, np.int64)
    for k in range(_MAX_LEN):
        out += a >= (np.int64(1) << k)
    return out


class _Model:
    def __init__(self):
        self.counts = np.ones((_N_CTX, 2), np.int64)

    def prob(self, ctx):
        n0, n1 = self.counts[ctx, 0], self.counts[ctx, 1]
        q = np.clip(((2 * n1 + 1) << 16) // (2 * (n0 + n1) + 2), 16, 65520)
        return q.astype(np.float64) / 65536.0

    def update(self, ctx, ones):
        self.counts[:, 1] += np.bincount(ctx[ones], minlength=_N_CTX)
        self.counts[:, 0] += np.bincount(ctx[~ones], minlength=_N_CTX)
        big = self.counts.sum(axis=1) > 1024
        self.counts[big] = (self.counts[big] + 1) >> 1


def _walk(base: np.ndarray, q: np.ndarray, coder) -> None:
    """Visit one slice in coding order; ``coder(ctx_or_None, bits_or_None, n)`` codes n flags
    (adaptive contexts) or n raw bits (ctx None) and returns them; q is filled in place."""
    model = _Model()
    b = np.pad(base.astype(np.int64), 1, mode="edge")
    grad = np.abs(b[1:-1, 2:] - b[1:-1, :-2]) + np.abs(b[2:, 1:-1] - b[:-2, 1:-1])
    mag = np.zeros(q.shape, np.int64)  # |q| of positions decoded so far
    for k, (py, px) in enumerate(_PHASES):
        sel = (slice(py, None, 2), slice(px, None, 2))
        if k == 0:
            cls, kind = _magnitude_class(grad[sel] // 4), 0
        else:
            m = np.pad(mag, 1)
            near = (m[:-2, :-2] + m[:-2, 2:] + m[2:, :-2] + m[2:, 2:]) if k == 1 else \
                   (m[:-2, 1:-1] + m[2:, 1:-1] + m[1:-1, :-2] + m[1:-1, 2:])
            cls, kind = _magnitude_class(near[sel]), 1 if k == 1 else 2
        cls = cls.ravel()
        n = cls.size
        if n == 0:
            continue
        truth = q[sel].ravel()  # the values when encoding; zeros (ignored) when decoding
        length = _bit_length(np.abs(truth))
        dec_len = np.zeros(n, np.int64)
        active = np.ones(n, bool)
        for j in range(_MAX_LEN):  # unary bit length: flag "L > j" while active
            idx = np.nonzero(active)[0]
            if idx.size == 0:
                break
            ctx = (kind * _CLASSES + cls[idx]) * 16 + min(j, 15)
            want = length[idx] > j
            flags = np.asarray(coder(ctx, want, idx.size, model), bool)
            model.update(ctx, flags)
            dec_len[idx[flags]] += 1
            active[idx[~flags]] = False
        nz = np.nonzero(dec_len)[0]
        mags = np.zeros(n, np.int64)
        mags[nz] = 1
        signs = np.asarray(coder(None, truth[nz] < 0, nz.size, model), bool)
        top = int(dec_len.max()) if n else 0
        for bit in range(top - 2, -1, -1):  # the bits below the leading one, high to low
            idx = nz[dec_len[nz] > bit + 1]
            want = ((np.abs(truth[idx]) >> bit) & 1).astype(bool)
            got = np.asarray(coder(None, want, idx.size, model), bool)
            mags[idx] = (mags[idx] << 1) | got
        mags[nz] = np.where(signs, -mags[nz], mags[nz])
        q[sel] = mags.reshape(q[sel].shape)
        mag[sel] = np.abs(q[sel])


def _family():
    import constriction

    return constriction.stream.model.Bernoulli(perfect=False)


def encode_slice(base: np.ndarray, q: np.ndarray) -> bytes:
    """Quantized residual (h, w) of one slice, given its base (h, w) -> payload."""
    import constriction

    enc = constriction.stream.queue.RangeEncoder()
    family = _family()

    def coder(ctx, want, n, model):
        if n:
            p = model.prob(ctx) if ctx is not None else np.full(n, 0.5)
            enc.encode(np.asarray(want, np.int32), family, p)
        return want

    _walk(base, q.astype(np.int64).copy(), coder)
    return enc.get_compressed().astype("<u4").tobytes()


def decode_slice(base: np.ndarray, data: bytes) -> np.ndarray:
    """Inverse of :func:`encode_slice`: q (h, w) int64."""
    import constriction

    if len(data) % 4:
        raise ContainerError("residual chunk is not a whole number of 32-bit words")
    dec = constriction.stream.queue.RangeDecoder(np.frombuffer(data, "<u4").astype(np.uint32))
    family = _family()

    def coder(ctx, want, n, model):
        if not n:
            return np.zeros(0, bool)
        p = model.prob(ctx) if ctx is not None else np.full(n, 0.5)
        return np.asarray(dec.decode(family, p)) > 0

    q = np.zeros(base.shape, np.int64)
    try:
        _walk(base, q, coder)
    except (ValueError, RuntimeError, OverflowError) as e:
        raise ContainerError(f"residual chunk does not decode: {e}") from e
    return q
