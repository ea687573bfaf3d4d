"""Reference implementation (the coder before compilation: numpy and constriction), kept
as the oracle of the differential tests: the adaptive models and the constriction wrapper."""
from __future__ import annotations

import numpy as np

from medcodec.errors import ContainerError

COUNT_LIMIT = 1024  # counts are halved above this, so the model keeps adapting
PROB_BITS = 16
_PROB_MIN = 16  # probabilities stay in [16, 65520] / 65536: no symbol is ever impossible


class AdaptiveBits:
    """Adaptive binary models over ``n`` contexts, one per stream of a batch of ``streams``:
    integer counts (n0, n1) from a Laplace start, halved above :data:`COUNT_LIMIT`, read as
    16-bit fixed-point probabilities. Contexts come as (streams, m) arrays. Shared by the
    code model here and the residual layer (:mod:`medcodec.coding.bounded_error`)."""

    def __init__(self, n: int, streams: int = 1):
        self.n = n
        self.counts = np.ones((streams, n, 2), np.int64)
        self._rows = np.arange(streams)[:, None]
        self._pending = np.zeros(0, np.intp)  # contexts still above the limit after halving

    def probabilities(self, ctx: np.ndarray) -> np.ndarray:
        """P(bit = 1) per position, float64 k / 2^16 (exact), from integer counts."""
        n0, n1 = self.counts[self._rows, ctx, 0], self.counts[self._rows, ctx, 1]
        return self._probability(n0, n1)

    def probabilities_at(self, stream: np.ndarray, ctx: np.ndarray) -> np.ndarray:
        """:meth:`probabilities` of single positions: stream and context index arrays."""
        c = self.counts[stream, ctx]
        return self._probability(c[..., 0], c[..., 1])

    @staticmethod
    def _probability(n0: np.ndarray, n1: np.ndarray) -> np.ndarray:
        q = ((2 * n1 + 1) << PROB_BITS) // (2 * (n0 + n1) + 2)
        q = np.minimum(np.maximum(q, _PROB_MIN), (1 << PROB_BITS) - _PROB_MIN)  # np.clip costs 3x more here
        return q.astype(np.float64) / (1 << PROB_BITS)

    def update(self, ctx: np.ndarray, ones: np.ndarray, where: np.ndarray | None = None,
               streams: np.ndarray | None = None) -> None:
        """Count the bits ``ones`` seen in contexts ``ctx`` (both (streams, m)); only where
        ``where`` is True if given. Every context whose total then exceeds
        :data:`COUNT_LIMIT` is halved once (work proportional to the bits, not to the
        number of contexts: only touched contexts, and those still above the limit after
        their last halving, can exceed it). ``streams`` (bool per stream, default all): the
        streams this update is for; the others' contexts are left exactly as they are, as if
        the call had not happened for them (``where`` must be False outside them)."""
        flat = (self._rows * self.n + ctx).ravel()
        ones = ones.ravel()
        if where is not None:
            flat, ones = flat[where.ravel()], ones[where.ravel()]
        self.update_at(flat, ones, streams)

    def update_at(self, flat: np.ndarray, ones: np.ndarray, streams: np.ndarray | None = None) -> None:
        """:meth:`update` with the positions given as flat indices stream * n + context."""
        counts = self.counts.reshape(-1, 2)
        np.add.at(counts, (flat, ones.astype(np.intp)), 1)
        pending, kept = self._pending, self._pending[:0]
        if streams is not None and pending.size:
            mine = streams[pending // self.n]
            pending, kept = pending[mine], pending[~mine]
        touched = np.concatenate([flat, pending]) if pending.size else flat
        over = counts[touched].sum(axis=1) > COUNT_LIMIT
        if not over.any():  # the usual case: nothing to halve, no need to deduplicate
            self._pending = kept
            return
        big = np.unique(touched[over])  # each context halved once
        counts[big] = (counts[big] + 1) >> 1
        self._pending = np.concatenate([kept, big[counts[big].sum(axis=1) > COUNT_LIMIT]])


def magnitude_class(v: np.ndarray, classes: int) -> np.ndarray:
    """floor(log2(1 + v)) capped to ``classes - 1`` (integer arithmetic): the activity
    classes of the residual layers' contexts."""
    v = np.asarray(v, np.int64)
    out = np.zeros(v.shape, np.int64)
    for k in range(1, classes):
        out += v >= (1 << k) - 1
    return out


def bit_length(a: np.ndarray) -> np.ndarray:
    """Bits of non-negative integers below 2^53 (exact through float64's exponent)."""
    return np.frexp(np.asarray(a).astype(np.float64))[1].astype(np.int64)


def bernoulli_family():
    """constriction's Bernoulli model family, with its quantization pinned."""
    import constriction

    return constriction.stream.model.Bernoulli(perfect=False)


def bit_encoder():
    """(code, payload): ``code(p, want)`` range codes the bits ``want`` (bool (m,)) with
    P(bit = 1) = ``p`` (float64 (m,); None: 1/2) and returns them; ``payload()`` is the
    stream (32-bit words, little-endian)."""
    import constriction

    enc = constriction.stream.queue.RangeEncoder()
    family = bernoulli_family()

    def code(p, want):
        if want.size:
            enc.encode(np.asarray(want, np.int32), family, np.full(want.size, 0.5) if p is None else p)
        return want

    return code, lambda: enc.get_compressed().astype("<u4").tobytes()


def bit_decoder(data: bytes, what: str):
    """The decoding twin of :func:`bit_encoder`: ``code(p, want)`` reads ``want.size`` bits
    (``want`` only gives the count). Raises ContainerError (naming ``what``) for a stream
    that does not decode."""
    import constriction

    if len(data) % 4:
        raise ContainerError(f"{what} is not a whole number of 32-bit words")
    dec = constriction.stream.queue.RangeDecoder(np.frombuffer(data, "<u4").astype(np.uint32))
    family = bernoulli_family()

    def code(p, want):
        if not want.size:
            return want
        try:
            return np.asarray(dec.decode(family, np.full(want.size, 0.5) if p is None else p)) > 0
        except Exception as e:  # constriction reports invalid data with AssertionError
            raise ContainerError(f"{what} does not decode: {e}") from e

    return code


def code_bits(coders, model: AdaptiveBits | None, ctx, want, mask: np.ndarray,
              every_stream: bool = False) -> np.ndarray:
    """Code the bits of each stream where ``mask`` (S, m) is True, in position order, with
    ``model``'s probabilities in contexts ``ctx`` (S, m) (model None: p = 1/2, no update);
    ``want``: the true bits when encoding (None when decoding). Returns them, False
    elsewhere. The model is updated for the streams that coded something, or with
    ``every_stream`` for all of them (a coder that updates after every such call, empty or
    not, as the wavelet layer's sign step does)."""
    out = np.zeros(mask.shape, bool)
    empty = np.zeros(0, np.intp)
    if mask.shape[0] == 1:  # one stream: the same, with less bookkeeping per call
        cols = np.flatnonzero(mask[0])
        if cols.size:
            c = None if model is None else ctx[0, cols]
            out[0, cols] = bits = coders[0](None if model is None else model.probabilities_at(0, c),
                                            want[0, cols] if want is not None else np.zeros(cols.size, bool))
            if model is not None:
                model.update_at(c, bits)
        elif model is not None and every_stream:
            model.update_at(empty, empty)
        return out
    rows, cols = np.nonzero(mask)  # stream by stream, positions in order
    if not rows.size:
        if model is not None and every_stream:
            model.update_at(empty, empty)
        return out
    per = np.bincount(rows, minlength=mask.shape[0])
    ends = np.cumsum(per)
    p = None if model is None else model.probabilities_at(rows, ctx[rows, cols])
    wanted = None if want is None else want[rows, cols]
    bits = np.zeros(rows.size, bool)
    for s in np.flatnonzero(per):
        lo, hi = ends[s] - per[s], ends[s]
        bits[lo:hi] = coders[s](None if p is None else p[lo:hi],
                                wanted[lo:hi] if wanted is not None else np.zeros(hi - lo, bool))
    out[rows, cols] = bits
    if model is not None:
        model.update_at(rows * model.n + ctx[rows, cols], bits, streams=None if every_stream else per > 0)
    return out


