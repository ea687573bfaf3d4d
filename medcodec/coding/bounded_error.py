"""Bounded-error residual layer: near-lossless (|error| <= E) and lossless (E = 0) coding.

After the learned iterations, each slice's residual r = x - base (integers in the image's
units; ``base`` = the decoder's reconstruction in the pixel type) is coded by hierarchical
interpolation, all in integer arithmetic:

1. seed pass: every 16th row and column; prediction 0 (the base alone);
2. for s = 16, 8, 4, 2: the centres of the s-grid cells, predicted from their 4 diagonal
   neighbours, then the edge midpoints, predicted from their 4 direct neighbours (all of
   them already decoded).

The prediction is the rounded mean of the neighbours' decoded residuals; the prediction
error e = r - pred is quantized with step 2E+1 (q = sign(e) floor((|e| + E) / (2E+1))), so
the decoded pixel base + pred + q (2E+1) is within E of x, and decoded residuals feed the
next predictions (closed loop, identical in encoder and decoder). Values are clipped to the
pixel type at the end (which only moves them closer to x).

q is binarized as its bit length L (unary flags "L > j"), a sign and the L-1 bits below its
leading one, and range coded (:mod:`medcodec.coding.rangecoder`) with exact probabilities: flags
from adaptive integer counts with context (pass kind, activity class = the spread of the
neighbours' residuals, or the base's local gradient in the seed pass, j); signs and low
bits at p = 1/2. See :mod:`medcodec.coding.rangecoder` for why everything stays integer.
The walk is compiled (:mod:`medcodec.coding.kernels.bounded_error`); slices run on threads.

The base comes from a floating-point network, which may differ by a unit between machines
(CPU vs GPU); the container stores a CRC32 of the base and of the final slice so a decoder
that computes a different base refuses the file instead of returning a wrong image.
"""

from __future__ import annotations

import numpy as np

from .rangecoder import check_decoded, payload, words_of
from .threads import map_slices


def encode_slice(original: np.ndarray, base: np.ndarray, max_error: int) -> tuple[bytes, np.ndarray]:
    """Code one slice's residual layer: (payload, decoded slice in the pixel type), with
    |decoded - original| <= max_error everywhere."""
    return encode_slices(original[None], base[None], max_error)[0]


def encode_slices(originals: np.ndarray, bases: np.ndarray, max_error: int,
                  threads: int | None = None) -> list[tuple[bytes, np.ndarray]]:
    """:func:`encode_slice` of S slices of one shape ((S, h, w) each), on up to ``threads`` threads."""
    from .kernels import bounded_error as kernel
    from .kernels.rangecoder import finish, new_encoder

    def one(i: int) -> tuple[bytes, np.ndarray]:
        base = np.ascontiguousarray(bases[i], np.int64)
        target = np.asarray(originals[i], np.int64) - base
        rec, coder = kernel.walk(base, target, int(max_error), True, new_encoder(base.size // 8))
        return payload(finish(coder)), _final(bases[i], rec, originals.dtype)

    return map_slices(one, len(originals), threads)


def decode_slice(base: np.ndarray, data: bytes, max_error: int) -> np.ndarray:
    """Inverse of :func:`encode_slice`: the decoded slice, in the base's pixel type."""
    return decode_slices(base[None], [data], max_error)[0]


def decode_slices(bases: np.ndarray, datas: list[bytes], max_error: int, threads: int | None = None) -> np.ndarray:
    """:func:`decode_slice` of S slices of one shape (bases (S, h, w)), on up to ``threads`` threads.
    Raises ContainerError for a stream that does not decode."""
    from .kernels import bounded_error as kernel
    from .kernels.rangecoder import new_decoder

    out = np.empty(bases.shape, bases.dtype)
    what = "bounded-error layer chunk"

    def one(i: int) -> None:
        base = np.ascontiguousarray(bases[i], np.int64)
        rec, coder = kernel.walk(base, base, int(max_error), False, new_decoder(words_of(datas[i], what)))
        check_decoded(coder, what)
        out[i] = _final(bases[i], rec, bases.dtype)

    map_slices(one, len(bases), threads)
    return out


def _final(base: np.ndarray, rec: np.ndarray, dtype) -> np.ndarray:
    info = np.iinfo(dtype)
    return np.clip(base.astype(np.int64) + rec, info.min, info.max).astype(dtype)
