"""The residual layers as the encode and decode pipelines see them: one interface, so the
pipelines have no per-layer branches.

:class:`LayerStep` wraps a codec of :mod:`medcodec.coding.layers` with what the file adds
around its streams: the bounded-error layer stores CRC32s of the base and the final slice
(a decoder whose network reconstructs the base differently refuses the file, since the
bound would not hold) and is verified at encode time by decoding its streams; the wavelet
layer stores its streams alone. Slices are coded on up to ``threads`` threads.
"""

from __future__ import annotations

import dataclasses
import zlib

import numpy as np

from ..coding.interslice import SliceRecord
from ..coding.layers import BoundedErrorCodec, WaveletCodec
from ..errors import ReconstructionMismatchError
from ..format import BoundedErrorLayer, Reader, SlicePrediction, WaveletLayer


def _crc(a: np.ndarray) -> int:
    return zlib.crc32(np.ascontiguousarray(a).tobytes())


@dataclasses.dataclass(frozen=True)
class LayerStep:
    """One residual layer of a file: ``encode`` a batch of slices, ``decode`` them back,
    ``chunk`` the per-slice records into the format's layer object."""

    codec: BoundedErrorCodec | WaveletCodec

    @property
    def bounded(self) -> bool:
        return isinstance(self.codec, BoundedErrorCodec)

    @property
    def sequential(self) -> bool:
        """Whether a slice needs the decoded slices before it (inter-slice prediction)."""
        return self.codec.sequential

    @staticmethod
    def needed(reader: Reader, slice_ids: list[int]) -> list[int]:
        """The coded slices to decode for ``slice_ids``, sorted: each with the slices back to
        the intra slice its prediction chain starts at (at most the key interval)."""
        modes = None if reader.prediction is None else reader.prediction.modes
        out = set()
        for s in slice_ids:
            out.add(s)
            while modes is not None and modes[s]:
                s -= 1
                out.add(s)
        return sorted(out)

    def encode(self, originals: np.ndarray, bases: np.ndarray, threads: int | None = None) -> tuple[list, np.ndarray]:
        """(per-slice records for the file, final slices) of a batch (S, h, w)."""
        coded = self.codec.encode_slices(originals, bases, threads)
        if not self.bounded:
            return [record for record, _ in coded], np.stack([final for _, final in coded])
        # verified by decoding the streams, as a reader will
        checked = self.codec.decode_slices(bases, [record for record, _ in coded], threads)
        records = []
        for b, (record, final) in zip(bases, coded):
            data = record.record if self.sequential else record
            entry = (_crc(b), zlib.crc32(final.tobytes()), data)
            records.append(SliceRecord(record.mode, record.weights, entry) if self.sequential else entry)
        return records, np.stack(checked)

    def decode(self, reader: Reader, slice_ids: list[int], bases: np.ndarray, threads: int | None = None) -> np.ndarray:
        """The final slices of coded slices ``slice_ids`` from their bases (S, h, w); refuses
        a bounded-error base that differs from the encoder's, and a result that fails its CRC."""
        if not self.bounded:
            records = [reader.read_wavelet(i) for i in slice_ids]
            return self.codec.decode_slices(bases, self._chained(reader, slice_ids, records), threads)
        records = [reader.read_bounded_error(i) for i in slice_ids]
        for slice_index, base, (crc_base, _, _) in zip(slice_ids, bases, records):
            if _crc(base) != crc_base:
                raise ReconstructionMismatchError(
                    f"{reader.path}: this machine's network reconstructs slice {slice_index} differently from "
                    "the machine that encoded it (floating-point drift between CPU/GPU or library versions), "
                    f"so the guaranteed error bound {reader.max_error} would not hold. Decode it where it was "
                    "encoded or on a CPU (JAX_PLATFORMS=cpu), or decode a preview with fewer iterations.")
        finals = self.codec.decode_slices(bases, self._chained(reader, slice_ids, [r[2] for r in records]), threads)
        for slice_index, final, (_, crc_final, _) in zip(slice_ids, finals, records):
            if zlib.crc32(final.tobytes()) != crc_final:
                raise ReconstructionMismatchError(f"{reader.path}: slice {slice_index} fails its checksum after "
                                                  "the bounded-error layer; the file is corrupted")
        return finals

    def _chained(self, reader: Reader, slice_ids: list[int], layer_records: list) -> list:
        """The codec's records of ``slice_ids`` from the layer's own (one per slice): with
        their ZPRD mode and weights when slices are predicted (whole chains, see
        :meth:`needed`, in order)."""
        if not self.sequential:
            return layer_records
        p = reader.prediction
        return [SliceRecord(int(p.modes[i]), p.weights[i], r) for i, r in zip(slice_ids, layer_records)]

    def chunk(self, records: list) -> BoundedErrorLayer | WaveletLayer:
        """The format's layer object; a volume none of whose slices is predicted gets no
        ZPRD (its intra records decode the same without it, and the file keeps the older version)."""
        prediction = None
        if self.sequential:
            modes = np.array([r.mode for r in records], np.uint8)
            if modes.any():
                prediction = SlicePrediction(self.codec.key_interval, modes, np.stack([r.weights for r in records]))
            records = [r.record for r in records]
        if self.bounded:
            return BoundedErrorLayer(self.codec.max_error, records, prediction, self.codec.coding)
        return WaveletLayer(self.codec.step, self.codec.rho, records, prediction)

    @classmethod
    def of_file(cls, reader: Reader) -> "LayerStep | None":
        """The layer a file holds (None without one)."""
        key = None if reader.prediction is None else reader.prediction.key_interval
        window = tuple(reader.header.window)
        if reader.max_error is not None:
            return cls(BoundedErrorCodec(reader.max_error, key, window, reader.bounded_error_coding))
        if reader.wavelet is not None:
            delta, rho = reader.wavelet
            return cls(WaveletCodec(delta, window, rho, key))
        return None
