"""Reference implementation (the coder before compilation: numpy and constriction), kept
as the oracle of the differential tests: the codes' context model."""
from __future__ import annotations

import numpy as np

from medcodec.coding.codes import CODING_CONTEXT, pack_codes, unpack_codes
from .rangecoder import AdaptiveBits, bit_decoder, bit_encoder

_N_CONTEXTS = 3 * 3 * 15
_PHASES = ((0, 0), (1, 1), (0, 1), (1, 0))


def _neighbour_sum(plane: np.ndarray, diagonal: bool) -> np.ndarray:
    """Sum over the 4 diagonal or direct neighbours (zero outside) of (S, h, w[, c]) bits."""
    p = np.pad(plane, ((0, 0), (1, 1), (1, 1)) + ((0, 0),) * (plane.ndim - 3)).astype(np.int64)
    if diagonal:
        return p[:, :-2, :-2] + p[:, :-2, 2:] + p[:, 2:, :-2] + p[:, 2:, 2:]
    return p[:, :-2, 1:-1] + p[:, 2:, 1:-1] + p[:, 1:-1, :-2] + p[:, 1:-1, 2:]


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
    codes = np.asarray(codes) > 0
    n = codes.shape[0]
    model = SliceModel(n)
    out: list[list[tuple[int, bytes]]] = [[] for _ in range(n)]
    prev = None
    for t in range(codes.shape[1]):
        encoders = [bit_encoder() for _ in range(n)]
        truth, active = codes[:, t], _active(counts, t)

        def code_pass(ctx, sel, c, act, truth=truth, encoders=encoders):
            x = truth[(slice(None),) + sel + (c,)].reshape(n, -1)
            p = model.probabilities(ctx)
            for i, (code, _) in enumerate(encoders):
                code(_chosen(p, act, i), _chosen(x, act, i))
            return x

        model.walk(prev, np.zeros_like(truth), code_pass, active)
        for i, (_, payload) in enumerate(encoders):
            context_coded = payload()
            kept = truth[i] if active is None else truth[i][active[i]]
            packed = pack_codes(np.where(kept, 1, -1).astype(np.int8))
            out[i].append((CODING_CONTEXT, context_coded) if len(context_coded) < len(packed[1]) else packed)
        prev = truth
    return out


def _known_bits(coding: int, data: bytes, shape, active: np.ndarray | None) -> np.ndarray:
    """The bits of a packed (coding 0/1) chunk as bool ``shape``; with adaptive tiles only
    the ``active`` cells' bits are stored."""
    if active is None:
        return unpack_codes(coding, data, shape) > 0
    known = np.zeros(shape, bool)
    m = int(active.sum())
    known[active] = unpack_codes(coding, data, (m, 1, shape[2])).reshape(m, shape[2]) > 0
    return known


def decode_slices(chunks: list[list[tuple[int, bytes]]], shape: tuple[int, int, int],
                  counts: np.ndarray | None = None) -> np.ndarray:
    """Inverse of :func:`encode_slices` for the first k iterations (k = chunks per slice,
    equal for all): int8 (S, k, h, w, bits), +-1 where coded, 0 in cells past their
    ``counts``. Raises ContainerError for a stream that does not decode."""
    n = len(chunks)
    k = len(chunks[0]) if n else 0
    if any(len(c) != k for c in chunks):
        raise ValueError("every slice needs the same number of chunks")
    model = SliceModel(n)
    out = np.empty((n, k) + tuple(shape), np.int8)
    prev = None
    for t in range(k):
        decoders, known = {}, {}
        active = _active(counts, t)
        for i in range(n):
            coding, data = chunks[i][t]
            if coding == CODING_CONTEXT:
                decoders[i] = bit_decoder(data, f"entropy-coded CODE chunk of iteration {t + 1}")
            else:
                known[i] = _known_bits(coding, data, shape, None if active is None else active[i])

        def code_pass(ctx, sel, c, act, decoders=decoders, known=known):
            p = model.probabilities(ctx)
            bits = np.zeros(ctx.shape, bool)
            for i in range(n):
                if i in known:
                    bits[i] = known[i][sel + (c,)].ravel()
                    continue
                chosen = _chosen(p, act, i)
                got = decoders[i](chosen, np.zeros(chosen.shape[0], bool))
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

