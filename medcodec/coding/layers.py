"""The residual layers behind one small interface (the shape of CompressAI's LatentCodec).

A residual layer refines a base reconstruction (the learned layers' output, in the pixel
type) slice by slice, each slice its own stream:

- ``encode_slices(originals, bases) -> [(record, final)]``: per slice, what the file stores
  for it and the final slice a decoder will reconstruct;
- ``decode_slices(bases, records) -> finals``: the inverse, (S, h, w) in the base's type.

Slices of one call share a shape and are coded on up to ``threads`` threads (each its own
stream, so the result does not depend on how many). The two
layers are :class:`BoundedErrorCodec` (:mod:`.bounded_error`: every voxel within E) and
:class:`WaveletCodec` (:mod:`.wavelet_layer`: CDF 9/7 coefficients for a PSNR or rate).
Both are frozen dataclasses of plain numbers.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from . import bounded_error, interslice, wavelet_layer


@dataclasses.dataclass(frozen=True)
class BoundedErrorCodec:
    """The bounded-error layer with bound ``max_error`` E (0 = lossless); a record is the
    slice's stream (bytes). With ``key_interval`` (not None) the slices of a call are one
    volume coded with inter-slice prediction (:mod:`.interslice`, predictions clipped to the
    file's intensity ``window``) and a record is an :class:`.interslice.SliceRecord`.
    ``coding``: the stream's coding (:data:`.bounded_error.CODINGS`; 1 carries the adaptive
    models from slice to slice of a chain)."""

    max_error: int
    key_interval: int | None = None
    window: tuple[float, float] | None = None
    coding: int = bounded_error.CODING

    @property
    def sequential(self) -> bool:
        """Whether slices depend on the slices before them (a call must hold whole chains)."""
        return self.key_interval is not None

    def encode_slices(self, originals: np.ndarray, bases: np.ndarray,
                      threads: int | None = None) -> list[tuple[bytes, np.ndarray]]:
        if self.sequential:
            def code(original, base, models):
                data, final, after = bounded_error.code_slice(original, base, self.max_error, self.coding, models)
                return data, len(data), final, after

            records, finals = interslice.encode_chains(originals, bases, code, self.window, self.key_interval,
                                                       threads)
            return list(zip(records, finals))
        return bounded_error.encode_slices(originals, bases, self.max_error, threads, self.coding)

    def decode_slices(self, bases: np.ndarray, records: list[bytes], threads: int | None = None) -> np.ndarray:
        if self.sequential:
            def decode(base, data, models):
                return bounded_error.decode_one(base, data, self.max_error, self.coding, models)

            return interslice.decode_chains(bases, records, decode, self.window, threads)
        return bounded_error.decode_slices(bases, records, self.max_error, threads, self.coding)


@dataclasses.dataclass(frozen=True)
class WaveletCodec:
    """The wavelet layer with quantizer step ``step`` (pixel units) and reconstruction
    offset ``rho``; finals are clipped to the file's intensity ``window``. A record is
    (decomposition levels, stream); with ``key_interval`` (not None) the slices of a call are
    one volume coded with inter-slice prediction (:mod:`.interslice`) and a record is an
    :class:`.interslice.SliceRecord`."""

    step: float
    window: tuple[float, float]
    rho: float = wavelet_layer.RHO
    key_interval: int | None = None

    @property
    def sequential(self) -> bool:
        """Whether slices depend on the slices before them (a call must hold whole chains)."""
        return self.key_interval is not None

    def encode_slices(self, originals: np.ndarray, bases: np.ndarray,
                      threads: int | None = None) -> list[tuple[tuple[int, bytes], np.ndarray]]:
        if self.sequential:
            records, finals = interslice.encode_volume(originals, bases, self.step, self.window, self.key_interval,
                                                       self.rho, threads)
            return list(zip(records, finals))
        coded = wavelet_layer.encode_slices(originals, bases, self.step, self.window, self.rho, threads)
        return [((levels, data), final) for levels, data, final in coded]

    def decode_slices(self, bases: np.ndarray, records: list[tuple[int, bytes]],
                      threads: int | None = None) -> np.ndarray:
        if self.sequential:
            return interslice.decode_volume(bases, records, self.step, self.window, self.rho, threads)
        return wavelet_layer.decode_slices(bases, [r[0] for r in records], [r[1] for r in records],
                                           self.step, self.window, self.rho, threads)
