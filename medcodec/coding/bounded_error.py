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
neighbours' residuals, or the base's local gradient in the seed pass, j); signs at p = 1/2.
Two codings (the RESD chunk says which): 0 (files up to .mlc 1.5) codes every bit below
the leading one at p = 1/2 and starts every slice from fresh counts; 1 (since 1.6) codes the
first two bits below the leading one from adaptive counts in context (pass kind, depth, L),
and an inter-predicted slice of a volume (:mod:`.interslice`) starts from the counts the
slice before it ended with, so small slices do not pay for learning the statistics again
(measured on the MR atlas: lossless -2.0 %, ``--max-error 2`` -2.3 %). See :mod:`medcodec.coding.rangecoder` for why everything stays integer.
The walk is compiled (:mod:`medcodec.coding.kernels.bounded_error`); slices run on threads.

The base comes from a floating-point network, which may differ by a unit between machines
(CPU vs GPU); the container stores a CRC32 of the base and of the final slice so a decoder
that computes a different base refuses the file instead of returning a wrong image.
"""

from __future__ import annotations

import numpy as np

from .rangecoder import check_decoded, decoder_of, payload
from .threads import map_slices

CODINGS = (0, 1)
CODING = 1  # what new files use


def _low_depth(coding: int) -> int:
    from .kernels import bounded_error as kernel

    if coding not in CODINGS:
        raise ValueError(f"unknown bounded-error coding {coding}")
    return kernel.LOW_DEPTH if coding == 1 else 0


def _start(coding: int, models) -> tuple[np.ndarray, np.ndarray]:
    """The adaptive models a slice starts from: a copy of ``models`` (those a previous slice
    left) in coding 1, fresh ones without them or in coding 0 (which never carries any)."""
    from .kernels import bounded_error as kernel

    return kernel.new_models() if models is None or coding == 0 else tuple(m.copy() for m in models)


def code_slice(original: np.ndarray, base: np.ndarray, max_error: int, coding: int = CODING,
               models=None) -> tuple[bytes, np.ndarray, tuple]:
    """Code one slice's residual layer: (payload, decoded slice in the pixel type, the
    adaptive models after it: what the next slice of a chain starts from, None in coding 0),
    |decoded - original| <= max_error everywhere. ``models``: where coding starts (see
    :func:`_start`; not changed)."""
    from .kernels import bounded_error as kernel
    from .kernels.rangecoder import finish, new_encoder

    models = _start(coding, models)
    base64 = np.ascontiguousarray(base, np.int64)
    target = np.asarray(original, np.int64) - base64
    rec, coder = kernel.walk(base64, target, int(max_error), True, new_encoder(base64.size // 8), *models,
                             _low_depth(coding))
    return payload(finish(coder)), _final(base, rec, original.dtype), models if coding else None


def decode_one(base: np.ndarray, data: bytes, max_error: int, coding: int = CODING, models=None) -> tuple[np.ndarray, tuple]:
    """Inverse of :func:`code_slice`: (decoded slice in the base's pixel type, models after
    it). Raises ContainerError for a stream that does not decode."""
    from .kernels import bounded_error as kernel

    what = "bounded-error layer chunk"
    models = _start(coding, models)
    base64 = np.ascontiguousarray(base, np.int64)
    rec, coder = kernel.walk(base64, base64, int(max_error), False, decoder_of(data, what), *models,
                             _low_depth(coding))
    check_decoded(coder, what)
    return _final(base, rec, base.dtype), models if coding else None


def encode_slice(original: np.ndarray, base: np.ndarray, max_error: int, coding: int = CODING) -> tuple[bytes, np.ndarray]:
    """Code one slice on its own: (payload, decoded slice in the pixel type), with
    |decoded - original| <= max_error everywhere."""
    return code_slice(original, base, max_error, coding)[:2]


def encode_slices(originals: np.ndarray, bases: np.ndarray, max_error: int,
                  threads: int | None = None, coding: int = CODING) -> list[tuple[bytes, np.ndarray]]:
    """:func:`encode_slice` of S slices of one shape ((S, h, w) each), on up to ``threads`` threads."""
    return map_slices(lambda i: encode_slice(originals[i], bases[i], max_error, coding), len(originals), threads)


def decode_slice(base: np.ndarray, data: bytes, max_error: int, coding: int = CODING) -> np.ndarray:
    """Inverse of :func:`encode_slice`: the decoded slice, in the base's pixel type."""
    return decode_one(base, data, max_error, coding)[0]


def decode_slices(bases: np.ndarray, datas: list[bytes], max_error: int, threads: int | None = None,
                  coding: int = CODING) -> np.ndarray:
    """:func:`decode_slice` of S slices of one shape (bases (S, h, w)), on up to ``threads`` threads.
    Raises ContainerError for a stream that does not decode."""
    out = np.empty(bases.shape, bases.dtype)

    def one(i: int) -> None:
        out[i] = decode_slice(bases[i], datas[i], max_error, coding)

    map_slices(one, len(bases), threads)
    return out


def _final(base: np.ndarray, rec: np.ndarray, dtype) -> np.ndarray:
    info = np.iinfo(dtype)
    return np.clip(base.astype(np.int64) + rec, info.min, info.max).astype(dtype)
