"""Context-model entropy coding of the binary codes (``CODE`` chunk coding 2).

A slice's codes, shape (T, h, w, bits) in {-1, +1}, are visited iteration by iteration,
channel by channel, and each (iteration, channel) plane in four polyphase passes: positions
(even, even), (odd, odd), (even, odd), (odd, even). All positions of one pass are coded at
once by the range coder (:mod:`medcodec.coding.rangecoder`) with one probability per position, taken
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
deflated bits (codings 0 / 1, :func:`pack_codes`); the model is updated from the
decoded bits either way. Payload of coding 2: the range coder's 32-bit words, little-endian.

The walk is compiled (:mod:`medcodec.coding.kernels.codes`); slices run on threads.
"""

from __future__ import annotations

import zlib

import numpy as np

from ..errors import ContainerError, UnsupportedVersionError
from .rangecoder import check_decoded, decoder_of, payload
from .threads import map_slices

CODING_RAW, CODING_ZLIB, CODING_CONTEXT = 0, 1, 2


def _active(counts: np.ndarray | None, i: int, t: int, shape) -> np.ndarray:
    """uint8 (h, w): the cells of slice i coded in iteration t."""
    if counts is None:
        return np.ones(shape[:2], np.uint8)
    return (np.asarray(counts[i]) > t).astype(np.uint8)


def encode_slices(codes: np.ndarray, counts: np.ndarray | None = None,
                  threads: int | None = None) -> list[list[tuple[int, bytes]]]:
    """Codes (S, T, h, w, bits) of S slices (+-1) -> per slice, (coding, payload) per
    iteration; each slice its own stream, slices on up to ``threads`` threads
    (:func:`medcodec.coding.threads.map_slices`). ``counts`` (S, h, w): per-cell
    iteration counts (adaptive tiles); cells past their count are not coded (their codes
    must be 0)."""
    from .kernels import codes as kernel
    from .kernels.rangecoder import finish, new_encoder, new_model

    truth = np.asarray(codes) > 0
    n, steps, h, w, bits = truth.shape

    def one(i: int) -> list[tuple[int, bytes]]:
        model = new_model(kernel.N_CONTEXTS)
        planes = np.zeros((2, h, w, bits), np.uint8)
        chunks = []
        for t in range(steps):
            planes[1] = truth[i, t]
            active = _active(counts, i, t, (h, w))
            coder = kernel.walk_iteration(model, planes, t > 0, active, kernel.ENCODE, new_encoder(h * w * bits // 16))
            context_coded = payload(finish(coder))
            packed = pack_codes(np.where(truth[i, t][active > 0], 1, -1).astype(np.int8))
            chunks.append((CODING_CONTEXT, context_coded) if len(context_coded) < len(packed[1]) else packed)
            planes[0] = planes[1]
        return chunks

    return map_slices(one, n, threads)


def encode_slice(codes: np.ndarray) -> list[tuple[int, bytes]]:
    """Codes (T, h, w, bits) of one slice (+-1) -> (coding, payload) per iteration."""
    return encode_slices(np.asarray(codes)[None])[0]


def _known_bits(coding: int, data: bytes, shape, active: np.ndarray) -> np.ndarray:
    """The bits of a packed (coding 0/1) chunk as uint8 ``shape``; with adaptive tiles only
    the ``active`` cells' bits are stored."""
    known = np.zeros(shape, np.uint8)
    m = int(active.sum())
    known[active > 0] = unpack_codes(coding, data, (m, 1, shape[2])).reshape(m, shape[2]) > 0
    return known


def decode_slices(chunks: list[list[tuple[int, bytes]]], shape: tuple[int, int, int],
                  counts: np.ndarray | None = None, threads: int | None = None) -> np.ndarray:
    """Inverse of :func:`encode_slices` for the first k iterations (k = chunks per slice,
    equal for all): int8 (S, k, h, w, bits), +-1 where coded, 0 in cells past their
    ``counts``. Raises ContainerError for a stream that does not decode."""
    from .kernels import codes as kernel
    from .kernels.rangecoder import new_model

    n = len(chunks)
    k = len(chunks[0]) if n else 0
    if any(len(c) != k for c in chunks):
        raise ValueError("every slice needs the same number of chunks")
    h, w, bits = shape
    out = np.empty((n, k) + tuple(shape), np.int8)

    def one(i: int) -> None:
        model = None  # made at the first walk: a tile map can leave every cell uncoded
        planes = np.zeros((2, h, w, bits), np.uint8)
        for t in range(k):
            coding, data = chunks[i][t]
            active = _active(counts, i, t, (h, w))
            what = f"entropy-coded CODE chunk of iteration {t + 1}"
            if coding == CODING_CONTEXT:
                coder = decoder_of(data, what)
                planes[1] = 0
                if active.any():
                    model = new_model(kernel.N_CONTEXTS) if model is None else model
                    coder = kernel.walk_iteration(model, planes, t > 0, active, kernel.DECODE, coder)
                    check_decoded(coder, what)
            else:
                planes[1] = _known_bits(coding, data, shape, active)
                if active.any():
                    model = new_model(kernel.N_CONTEXTS) if model is None else model
                    kernel.walk_iteration(model, planes, t > 0, active, kernel.KNOWN, decoder_of(b"", what))
            out[i, t] = np.where(planes[1] > 0, 1, -1) * (active[..., None] if counts is not None else 1)
            planes[0] = planes[1]

    map_slices(one, n, threads)
    return out


def decode_slice(chunks: list[tuple[int, bytes]], shape: tuple[int, int, int]) -> np.ndarray:
    """Inverse of :func:`encode_slice` for the first ``len(chunks)`` iterations: int8 +-1
    (k, h, w, bits). Raises ContainerError for a stream that does not decode."""
    return decode_slices([chunks], shape)[0]


def pack_codes(codes: np.ndarray) -> tuple[int, bytes]:
    """(h, w, bits) array of +-1 -> (coding, bytes); deflate only where it pays."""
    raw = np.packbits(np.asarray(codes) > 0).tobytes()
    deflated = zlib.compress(raw, 9)
    return (CODING_ZLIB, deflated) if len(deflated) < len(raw) else (CODING_RAW, raw)


def unpack_codes(coding: int, data: bytes, shape: tuple[int, int, int]) -> np.ndarray:
    """Inverse of :func:`pack_codes`: int8 +-1 array of ``shape``."""
    n = int(np.prod(shape))
    if coding == CODING_ZLIB:
        try:
            data = zlib.decompress(data)
        except zlib.error as e:
            raise ContainerError("CODE chunk does not inflate") from e
    elif coding == CODING_CONTEXT:  # stateful: only decode_slices can decode it
        raise ContainerError("CODE chunk is context-coded; decode it with decode_slices")
    elif coding != CODING_RAW:
        raise UnsupportedVersionError(f"CODE chunk uses unknown coding {coding}; upgrade medcodec")
    if len(data) != (n + 7) // 8:
        raise ContainerError("CODE chunk holds the wrong number of bits for its slice")
    bits = np.unpackbits(np.frombuffer(data, np.uint8), count=n)
    return (bits.astype(np.int8) * 2 - 1).reshape(shape)

