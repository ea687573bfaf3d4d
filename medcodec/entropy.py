"""Context-model entropy coding of the binary codes (``CODE`` chunk coding 2).

A slice's codes, shape (T, h, w, bits) in {-1, +1}, are visited iteration by iteration,
channel by channel, and each (iteration, channel) plane in four polyphase passes: positions
(even, even), (odd, odd), (even, odd), (odd, even). All positions of one pass are coded at
once by a range coder (``constriction``) with one Bernoulli probability per position, taken
from the context of the bit, built only from bits the decoder already has:

- ``prev``: the same bit in iteration t-1 (none / -1 / +1),
- ``below``: channel c-1 at the same place in iteration t (none / -1 / +1),
- ``spatial``: pass 1: how many of the 4 neighbours in iteration t-1 are +1 (0..4); pass 2:
  how many of the 4 diagonal neighbours in this plane (all from pass 1) are +1; passes 3-4:
  how many of the 4 direct neighbours in this plane are +1 (15 states in all),

3 x 3 x 15 = 135 contexts. The model is adaptive per slice: integer counts (n0, n1) per
context, updated after each pass, halved above :data:`COUNT_LIMIT`, turned into 16-bit
fixed-point probabilities. Everything the probabilities depend on is integer arithmetic, so
encoder and decoder agree bit for bit on any machine (a float context network may differ by
an ulp between CPU and GPU and break the stream).

Adaptive tiles (``.mlc`` 1.2): given per-cell iteration counts (S, h, w), iteration t codes
only the cells whose count is > t, in the same order; absent bits read as -1 in every
context, on both sides. The packed fallback then holds only those cells' bits.

Each iteration of a slice is one chunk, so progressive decoding keeps working: a reader
decodes iterations 0..k-1 of a slice in order and the counts carry across them. Per chunk,
the writer keeps whichever is smaller, the context-coded stream (coding 2) or the packed /
deflated bits (codings 0 / 1, see :mod:`medcodec.container`); the model is updated from the
decoded bits either way. Payload of coding 2: the range coder's 32-bit words, little-endian.
"""

from __future__ import annotations

import numpy as np

from .errors import ContainerError

CODING_CONTEXT = 2
COUNT_LIMIT = 1024  # counts are halved above this, so the model keeps adapting
PROB_BITS = 16
_PROB_MIN = 16  # probabilities stay in [16, 65520] / 65536: no symbol is ever impossible
_N_CONTEXTS = 3 * 3 * 15
_PHASES = ((0, 0), (1, 1), (0, 1), (1, 0))


def _neighbour_sum(plane: np.ndarray, diagonal: bool) -> np.ndarray:
    """Sum over the 4 diagonal or direct neighbours (zero outside) of (S, h, w[, c]) bits."""
    p = np.pad(plane, ((0, 0), (1, 1), (1, 1)) + ((0, 0),) * (plane.ndim - 3)).astype(np.int64)
    if diagonal:
        return p[:, :-2, :-2] + p[:, :-2, 2:] + p[:, 2:, :-2] + p[:, 2:, 2:]
    return p[:, :-2, 1:-1] + p[:, 2:, 1:-1] + p[:, 1:-1, :-2] + p[:, 1:-1, 2:]


class AdaptiveBits:
    """Adaptive binary models over ``n`` contexts, one per stream of a batch of ``streams``:
    integer counts (n0, n1) from a Laplace start, halved above :data:`COUNT_LIMIT`, read as
    16-bit fixed-point probabilities. Contexts come as (streams, m) arrays. Shared by the
    code model here and the residual layer (:mod:`medcodec.residual`)."""

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


class SliceModel(AdaptiveBits):
    """The code models of a batch of slices (one per slice); :meth:`walk` visits one
    iteration of all of them in lockstep (numpy work shared, streams kept apart)."""

    def __init__(self, slices: int = 1):
        super().__init__(_N_CONTEXTS, slices)

    def walk(self, prev: np.ndarray | None, cur: np.ndarray, code_pass,
             active: np.ndarray | None = None) -> None:
        """Visit iteration t in coding order. prev: bool (S, h, w, bits) of iteration t-1 or
        None; cur: bool (S, h, w, bits), filled pass by pass with what
        ``code_pass(ctx, sel, c, act)`` returns: the (S, m) bits of channel c at positions
        ``sel`` (a pair of slices over h and w), given their (S, m) contexts; ``act`` (S, m)
        bool marks the positions coded (None: all); the others must come back False.
        ``active`` (S, h, w) bool: the cells coded in this iteration (None: all)."""
        n, h, w, bits = cur.shape
        zeros = np.zeros((n, h, w), np.int64)
        if prev is not None:  # once per iteration for all channels
            p_all = prev.astype(np.int64) + 1
            nbr_all = _neighbour_sum(prev, diagonal=False)
        for c in range(bits):
            if prev is None:
                p, nbr_prev = zeros, zeros
            else:
                p, nbr_prev = p_all[..., c], nbr_all[..., c]
            below = cur[..., c - 1].astype(np.int64) + 1 if c else zeros
            base = (p * 3 + below) * 15
            for k, (py, px) in enumerate(_PHASES):
                sel = (slice(py, None, 2), slice(px, None, 2))
                at = (slice(None),) + sel
                if k == 0:
                    spatial = nbr_prev[at]
                elif k == 1:
                    spatial = 5 + _neighbour_sum(cur[..., c], diagonal=True)[at]
                else:
                    spatial = 10 + _neighbour_sum(cur[..., c], diagonal=False)[at]
                ctx = (base[at] + spatial).reshape(n, -1)
                if ctx.shape[1] == 0:
                    continue
                act = None if active is None else active[at].reshape(n, -1)
                ones = np.asarray(code_pass(ctx, sel, c, act), bool).reshape(n, -1)
                cur[at + (c,)] = ones.reshape(cur[at + (c,)].shape)
                self.update(ctx, ones, act)


def _active(counts: np.ndarray | None, t: int) -> np.ndarray | None:
    return None if counts is None else np.asarray(counts) > t


def _chosen(rows: np.ndarray, act: np.ndarray | None, i: int) -> np.ndarray:
    return rows[i] if act is None else rows[i][act[i]]


def encode_slices(codes: np.ndarray, counts: np.ndarray | None = None) -> list[list[tuple[int, bytes]]]:
    """Codes (S, T, h, w, bits) of S slices (+-1) -> per slice, (coding, payload) per
    iteration. Each slice is its own stream; batching only shares the numpy work.
    ``counts`` (S, h, w): per-cell iteration counts (adaptive tiles); cells past their count
    are not coded (their codes must be 0)."""
    import constriction

    from .container import pack_codes

    codes = np.asarray(codes) > 0
    n = codes.shape[0]
    model, family = SliceModel(n), bernoulli_family()
    out: list[list[tuple[int, bytes]]] = [[] for _ in range(n)]
    prev = None
    for t in range(codes.shape[1]):
        encoders = [constriction.stream.queue.RangeEncoder() for _ in range(n)]
        truth, active = codes[:, t], _active(counts, t)

        def code_pass(ctx, sel, c, act, truth=truth, encoders=encoders):
            x = truth[(slice(None),) + sel + (c,)].reshape(n, -1)
            p = model.probabilities(ctx)
            for i, enc in enumerate(encoders):
                enc.encode(_chosen(x, act, i).astype(np.int32), family, _chosen(p, act, i))
            return x

        model.walk(prev, np.zeros_like(truth), code_pass, active)
        for i, enc in enumerate(encoders):
            context_coded = enc.get_compressed().astype("<u4").tobytes()
            kept = truth[i] if active is None else truth[i][active[i]]
            packed = pack_codes(np.where(kept, 1, -1).astype(np.int8))
            out[i].append((CODING_CONTEXT, context_coded) if len(context_coded) < len(packed[1]) else packed)
        prev = truth
    return out


def encode_slice(codes: np.ndarray) -> list[tuple[int, bytes]]:
    """Codes (T, h, w, bits) of one slice (+-1) -> (coding, payload) per iteration."""
    return encode_slices(np.asarray(codes)[None])[0]


def decode_slices(chunks: list[list[tuple[int, bytes]]], shape: tuple[int, int, int],
                  counts: np.ndarray | None = None) -> np.ndarray:
    """Inverse of :func:`encode_slices` for the first k iterations (k = chunks per slice,
    equal for all): int8 (S, k, h, w, bits), +-1 where coded, 0 in cells past their
    ``counts``. Raises ContainerError for a stream that does not decode."""
    import constriction

    from .container import unpack_codes

    n = len(chunks)
    k = len(chunks[0]) if n else 0
    if any(len(c) != k for c in chunks):
        raise ValueError("every slice needs the same number of chunks")
    model, family = SliceModel(n), bernoulli_family()
    out = np.empty((n, k) + tuple(shape), np.int8)
    prev = None
    for t in range(k):
        decoders, known = {}, {}
        active = _active(counts, t)
        for i in range(n):
            coding, data = chunks[i][t]
            if coding == CODING_CONTEXT:
                if len(data) % 4:
                    raise ContainerError("entropy-coded CODE chunk is not a whole number of 32-bit words")
                decoders[i] = constriction.stream.queue.RangeDecoder(np.frombuffer(data, "<u4").astype(np.uint32))
            elif active is None:
                known[i] = unpack_codes(coding, data, shape) > 0
            else:  # only the active cells' bits are stored
                known[i] = np.zeros(shape, bool)
                m = int(active[i].sum())
                known[i][active[i]] = unpack_codes(coding, data, (m, 1, shape[2])).reshape(m, shape[2]) > 0

        def code_pass(ctx, sel, c, act, decoders=decoders, known=known, t=t):
            p = model.probabilities(ctx)
            bits = np.zeros(ctx.shape, bool)
            for i in range(n):
                if i in known:
                    bits[i] = known[i][sel + (c,)].ravel()
                    continue
                try:
                    got = np.asarray(decoders[i].decode(family, _chosen(p, act, i))) > 0
                except Exception as e:  # constriction reports invalid data with AssertionError
                    raise ContainerError(f"entropy-coded CODE chunk of iteration {t + 1} does not "
                                         f"decode: {e}") from e
                if act is None:
                    bits[i] = got
                else:
                    bits[i][act[i]] = got
            return bits

        cur = np.zeros((n,) + tuple(shape), bool)
        model.walk(prev, cur, code_pass, active)
        out[:, t] = np.where(cur, 1, -1) if active is None else np.where(cur, 1, -1) * active[..., None]
        prev = cur
    return out


def decode_slice(chunks: list[tuple[int, bytes]], shape: tuple[int, int, int]) -> np.ndarray:
    """Inverse of :func:`encode_slice` for the first ``len(chunks)`` iterations: int8 +-1
    (k, h, w, bits). Raises ContainerError for a stream that does not decode."""
    return decode_slices([chunks], shape)[0]
