"""The range coder behind every stream medcodec writes, seen from Python.

Every stream (the learned codes, the bounded-error layer, the wavelet layer) is a sequence
of bits range coded with P(bit = 1) = q / 2^16, q from adaptive integer counts per context
(halved above :data:`medcodec.coding.kernels.rangecoder.COUNT_LIMIT`), so encoder and
decoder agree bit for bit on any machine. The arithmetic is that of ``constriction``'s
queue ``RangeEncoder`` with a ``Bernoulli(perfect=False)`` model, which wrote medcodec's
streams before the compiled coder (:mod:`medcodec.coding.kernels.rangecoder`) replaced it
byte for byte and is now the test oracle. A stream's payload is the coder's 32-bit words,
little-endian.
"""

from __future__ import annotations

import numpy as np

from ..errors import ContainerError


def payload(words: np.ndarray) -> bytes:
    """A finished stream's words as the bytes a file holds."""
    return np.asarray(words, np.uint32).astype("<u4").tobytes()


def words_of(data: bytes, what: str) -> np.ndarray:
    """The uint32 words of a stored stream; ContainerError (naming ``what``) if it is not a
    whole number of words."""
    if len(data) % 4:
        raise ContainerError(f"{what} is not a whole number of 32-bit words")
    return np.frombuffer(data, "<u4").astype(np.uint32)


def decoder_of(data: bytes, what: str) -> np.ndarray:
    """A decoder (the kernels' coder array) over a stored stream (:func:`words_of`).

    Made and checked (:func:`check_decoded`) by the kernels' own Python bodies (numba's
    ``py_func``): an allocation or a flag test gains nothing from compiling, and each
    compiled function a process calls from Python costs it a load from the cache (5-20 ms
    of a warm ``medcodec decode``)."""
    from .kernels.rangecoder import new_decoder

    return new_decoder.py_func(words_of(data, what))


def check_decoded(coder: np.ndarray, what: str) -> None:
    """Raise ContainerError when a decoder met words that no encoder writes."""
    from .kernels.rangecoder import failed

    if failed.py_func(coder):
        raise ContainerError(f"{what} does not decode")


def encode_bits(bits: np.ndarray, q: np.ndarray) -> bytes:
    """Range-code ``bits`` (bool (m,)) with P(1) = q / 2^16 (int (m,)): the payload."""
    from .kernels.rangecoder import encode_bits as encode

    return payload(encode(np.asarray(bits, np.uint8), np.asarray(q, np.int64)))


def decode_bits(data: bytes, q: np.ndarray, what: str = "stream") -> np.ndarray:
    """Inverse of :func:`encode_bits`: bool (m,). ContainerError for a stream that does not decode."""
    from .kernels.rangecoder import decode_bits as decode

    bits, ok = decode(words_of(data, what), np.asarray(q, np.int64))
    if not ok:
        raise ContainerError(f"{what} does not decode")
    return bits.astype(bool)
