"""Reading `.mlc` files: :class:`Reader` (random access to any slice and iteration) and
size queries answered from the index alone."""

from __future__ import annotations

import os
import struct
import zlib
from pathlib import Path
from typing import BinaryIO

import numpy as np

from ..errors import ContainerError, ReadError, TruncatedFileError, UnsupportedVersionError
from ..io import lossy_flags
from .header import Header, decode_header, decode_meta, validate_header
from .layers import SlicePrediction, TileMap, valid_wavelet_step
from .spec import (CHUNK, CODE_PREFIX, CRC, END_CHUNK, GRID_FIELDS, INDEX_ENTRY, PREAMBLE_SIZE,
                   RESD_PREFIX, RIDX_PREFIX, XIDX_PREFIX, XRES_PREFIX, KNOWN_REQUIRED, MAGIC,
                   TRANSFORM_CDF97, VERSION, layer_index_size, layer_prefix)


class Reader:
    """Random access to a ``.mlc`` file: header, metadata, and any (slice, iteration) codes.

    Opening reads and verifies only the header, metadata and index chunks.
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        try:
            self._f: BinaryIO = open(self.path, "rb")
        except OSError as e:
            raise ReadError(f"cannot open {self.path}: {e.strerror or e}") from e
        try:
            self._open()
        except BaseException:
            self._f.close()
            raise

    def __enter__(self) -> "Reader":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self._f.close()

    def _read_exact(self, n: int, what: str) -> bytes:
        data = self._f.read(n)
        if len(data) != n:
            raise TruncatedFileError(f"{self.path.name}: file ends inside the {what}; it is truncated")
        return data

    def _read_chunk(self) -> tuple[bytes, bytes]:
        ctype, length = CHUNK.unpack(self._read_exact(CHUNK.size, "chunk header"))
        if length > self.file_size:
            raise TruncatedFileError(f"{self.path.name}: chunk {ctype!r} claims {length} bytes, "
                                     f"more than the file holds; it is truncated or corrupted")
        payload = self._read_exact(length, f"chunk {ctype!r}")
        (crc,) = CRC.unpack(self._read_exact(CRC.size, "chunk checksum"))
        if zlib.crc32(CHUNK.pack(ctype, length) + payload) != crc:
            raise ContainerError(f"{self.path.name}: checksum mismatch in chunk {ctype!r}; "
                                 "the file is corrupted")
        return ctype, payload

    def _open(self) -> None:
        self.file_size = os.fstat(self._f.fileno()).st_size
        magic = self._f.read(len(MAGIC))
        if magic != MAGIC:
            if len(magic) < len(MAGIC) and MAGIC.startswith(magic):
                raise TruncatedFileError(f"{self.path.name}: file is truncated")
            raise ContainerError(f"{self.path.name} is not a .mlc file (bad magic bytes)")
        version = self._read_exact(4, "version")
        (crc,) = CRC.unpack(self._read_exact(4, "version checksum"))
        if zlib.crc32(magic + version) != crc:
            raise ContainerError(f"{self.path.name}: checksum mismatch in the format version; "
                                 "the file is corrupted")
        major, minor = struct.unpack("<HH", version)
        if major != VERSION[0]:
            raise UnsupportedVersionError(
                f"{self.path.name} is .mlc format version {major}.{minor}; this medcodec reads "
                f"version {VERSION[0]}.x: upgrade medcodec")
        self.version = (major, minor)
        header = meta = index = ridx = xidx = tile = grid = zprd = None
        while index is None:
            ctype, payload = self._read_chunk()
            if ctype == b"HEAD":
                header = decode_header(payload)
            elif ctype == b"META":
                meta = decode_meta(payload)
            elif ctype == b"INDX":
                index = payload
            elif ctype == b"RIDX":
                ridx = payload
            elif ctype == b"XIDX":
                xidx = payload
            elif ctype == b"TILE":
                tile = payload
            elif ctype == b"ZPRD":
                zprd = payload
            elif ctype == b"GRID":
                if len(payload) != GRID_FIELDS.size:
                    raise ContainerError(f"{self.path.name}: GRID chunk has the wrong size")
                grid = GRID_FIELDS.unpack(payload)
            elif ctype[:1].isupper() or ctype in KNOWN_REQUIRED:
                raise UnsupportedVersionError(
                    f"{self.path.name} needs chunk {ctype!r} that this medcodec does not know; "
                    "upgrade medcodec")
            # unknown optional chunk: skipped
        if header is None or meta is None:
            raise ContainerError(f"{self.path.name}: HEAD or META chunk missing before INDX")
        header.metadata = meta
        header.version = self.version
        header.grid = grid
        validate_header(header)
        self.header = header
        self._data_start = self._f.tell()
        self._parse_index(index)
        if ridx is not None and xidx is not None:
            raise ContainerError(f"{self.path.name}: a file has at most one residual layer")
        self._parse_bounded_error_index(ridx)
        self._parse_wavelet_index(xidx)
        self.tiles = None if tile is None else TileMap.decode(tile, header)
        if zprd is not None and xidx is None and ridx is None:
            raise ContainerError(f"{self.path.name}: ZPRD chunk without a residual layer")
        try:
            self.prediction = None if zprd is None else SlicePrediction.decode(zprd, header)
        except ContainerError as e:
            raise ContainerError(f"{self.path.name}: {e}") from e
        self._prediction_size = 0 if zprd is None else CHUNK.size + len(zprd) + CRC.size

    def _parse_index(self, payload: bytes) -> None:
        h = self.header
        if len(payload) < 4:
            raise ContainerError(f"{self.path.name}: INDX chunk too short")
        (n,) = struct.unpack_from("<I", payload)
        if n != h.slices * h.iterations or len(payload) != 4 + n * INDEX_ENTRY.size:
            raise ContainerError(f"{self.path.name}: index size does not match the header")
        arr = np.frombuffer(payload, dtype=np.dtype([("off", "<u8"), ("len", "<u4")]), offset=4)
        self._index = arr.reshape(h.slices, h.iterations)
        end = self._data_start
        for off, ln in zip(arr["off"].tolist(), arr["len"].tolist()):
            if off < end:
                raise ContainerError(f"{self.path.name}: index offsets are inconsistent")
            end = off + CHUNK.size + ln + CRC.size
        if end > self.file_size:
            raise TruncatedFileError(f"{self.path.name}: index points past the end of the file; "
                                     "it is truncated")

    def _layer_index(self, payload: bytes, prefix: struct.Struct) -> tuple[tuple, np.ndarray]:
        """(prefix fields, entries) of a RIDX/XIDX chunk whose prefix ends with u32 n."""
        n_slices = self.header.slices
        if len(payload) != prefix.size + n_slices * INDEX_ENTRY.size:
            raise ContainerError(f"{self.path.name}: residual index size does not match the header")
        fields = prefix.unpack_from(payload)
        if fields[-1] != n_slices:
            raise ContainerError(f"{self.path.name}: residual index size does not match the header")
        arr = np.frombuffer(payload, dtype=np.dtype([("off", "<u8"), ("len", "<u4")]), offset=prefix.size)
        for off, ln in zip(arr["off"].tolist(), arr["len"].tolist()):
            if off < self._data_start:
                raise ContainerError(f"{self.path.name}: residual index offsets are inconsistent")
            if off + CHUNK.size + ln + CRC.size > self.file_size:
                raise TruncatedFileError(f"{self.path.name}: residual index points past the end of "
                                         "the file; it is truncated")
        return fields, arr

    def _parse_bounded_error_index(self, payload: bytes | None) -> None:
        self.max_error = None
        if payload is not None:
            (self.max_error, _), self._bounded_error_index = self._layer_index(payload, RIDX_PREFIX)

    def _parse_wavelet_index(self, payload: bytes | None) -> None:
        """XIDX: sets ``self.wavelet`` = (delta, rho), or None without the layer."""
        self.wavelet = None
        if payload is None:
            return
        (kind, delta, rho, _), self._wavelet_index = self._layer_index(payload, XIDX_PREFIX)
        if kind != TRANSFORM_CDF97:
            raise UnsupportedVersionError(f"{self.path.name} uses wavelet transform {kind}, unknown to "
                                          "this medcodec; upgrade medcodec")
        if not valid_wavelet_step(delta, rho):
            raise ContainerError(f"{self.path.name}: wavelet layer step {delta!r} / offset {rho!r} "
                                 "is out of range")
        self.wavelet = (delta, rho)

    def _layer_chunk(self, entry, kind: bytes, prefix: struct.Struct) -> bytes:
        off, ln = entry
        self._f.seek(int(off))
        ctype, payload = self._read_chunk()
        if ctype != kind or len(payload) != ln or len(payload) < prefix.size:
            raise ContainerError(f"{self.path.name}: residual index points to a wrong chunk")
        return payload

    def read_wavelet(self, slice_index: int) -> tuple[int, bytes]:
        """(levels, stream) of one slice's wavelet layer, checksum verified."""
        if self.wavelet is None:
            raise ContainerError(f"{self.path.name} has no wavelet layer")
        payload = self._layer_chunk(self._wavelet_index[slice_index], b"XRES", XRES_PREFIX)
        s, levels = XRES_PREFIX.unpack_from(payload)
        if s != slice_index:
            raise ContainerError(f"{self.path.name}: XRES chunk is out of place")
        return levels, payload[XRES_PREFIX.size :]

    @property
    def bounded_error_coding(self) -> int:
        """The coding of this file's bounded-error streams: 1 since format 1.6, else 0."""
        return 1 if self.version >= (1, 6) else 0

    def read_bounded_error(self, slice_index: int) -> tuple[int, int, bytes]:
        """(crc_base, crc_final, stream) of one slice's bounded-error layer, checksum verified."""
        if self.max_error is None:
            raise ContainerError(f"{self.path.name} has no bounded-error layer")
        payload = self._layer_chunk(self._bounded_error_index[slice_index], b"RESD", RESD_PREFIX)
        s, coding, crc_base, crc_final = RESD_PREFIX.unpack_from(payload)
        if s != slice_index or coding != self.bounded_error_coding:
            raise ContainerError(f"{self.path.name}: RESD chunk is out of place or of the wrong coding")
        return crc_base, crc_final, payload[RESD_PREFIX.size :]

    def read_codes(self, slice_index: int, iteration: int) -> tuple[int, bytes]:
        """(coding, data) of one slice and iteration, checksum verified."""
        off, ln = self._index[slice_index, iteration]
        self._f.seek(int(off))
        ctype, payload = self._read_chunk()
        if ctype != b"CODE" or len(payload) != ln:
            raise ContainerError(f"{self.path.name}: index points to a wrong chunk")
        s, t, coding = CODE_PREFIX.unpack_from(payload)
        if (s, t) != (slice_index, iteration):
            raise ContainerError(f"{self.path.name}: CODE chunk is out of place")
        return coding, payload[CODE_PREFIX.size :]

    def image_metadata(self, iterations: int | None = None) -> dict[str, str]:
        """Stored metadata plus the lossy-compression attributes of the image decoded from the
        first ``iterations`` (None: all; fewer skip the residual layer, so never lossless)."""
        h = self.header
        complete = iterations is None or iterations >= h.iterations
        raw = int(np.prod(h.size)) * _bytes_per_sample(h) * h.components
        return lossy_flags.image_metadata(h.metadata, self.max_error == 0 and complete, raw / self.file_size)

    def verify_end(self) -> None:
        """Check that the file ends with the END chunk (called after a full read)."""
        end_size = CHUNK.size + CRC.size
        if self.file_size < self._data_start + end_size:
            raise TruncatedFileError(f"{self.path.name}: END chunk missing; the file is truncated")
        self._f.seek(self.file_size - end_size)
        if self._f.read(end_size) != END_CHUNK:
            raise TruncatedFileError(f"{self.path.name}: END chunk missing; the file is truncated "
                                     "or has bytes after its end")

def prefix_sizes(path) -> list[int]:
    """Size in bytes of the file :func:`truncate` writes for k = 1..iterations, from the
    index alone (no rewriting): the layout is fixed, so size(k) = preamble + HEAD + META +
    INDX(k entries per slice) + the first k CODE chunks of every slice + END; with all
    iterations kept (and any residual layer with them) it is the file's own size."""
    with Reader(path) as r:
        h = r.header
        overhead = CHUNK.size + CRC.size
        index_full = overhead + 4 + INDEX_ENTRY.size * h.slices * h.iterations
        ridx = layer_index_size(layer_prefix(r.max_error is not None, r.wavelet is not None), h.slices)
        head_meta = r._data_start - PREAMBLE_SIZE - index_full - ridx - r._prediction_size  # ZPRD goes with the layer
        chunk_bytes = (r._index["len"].astype(np.int64) + overhead).sum(axis=0).cumsum()
    sizes = [int(PREAMBLE_SIZE + head_meta + overhead + 4 + INDEX_ENTRY.size * h.slices * k
                 + chunk_bytes[k - 1] + len(END_CHUNK)) for k in range(1, h.iterations)]
    return sizes + [r.file_size]


def payload_sizes(path) -> np.ndarray:
    """Bytes of coded bits per (slice, iteration), (slices, iterations) int64: each CODE
    chunk's payload without its slice/iteration/coding prefix."""
    with Reader(path) as r:
        return r._index["len"].astype(np.int64) - CODE_PREFIX.size


def _bytes_per_sample(h: Header) -> int:
    """Bytes of one uncompressed sample: a DICOM source's Bits Allocated (what its ratio is
    measured against; SimpleITK may have widened 16-bit CT to int32), else the pixel type's."""
    try:
        allocated = int(h.metadata.get("0028|0100", "").strip())
    except ValueError:
        allocated = 0
    return allocated // 8 if allocated in (8, 16, 32) else np.dtype(h.pixel_type).itemsize


def read_image_metadata(path, iterations: int | None = None) -> dict[str, str]:
    """The metadata of the image decoded from ``path`` (its first ``iterations``), as it leaves
    medcodec: the stored metadata with the lossy-compression attributes (:mod:`medcodec.io.lossy_flags`)."""
    with Reader(path) as r:
        return r.image_metadata(iterations)


def read_header(path) -> Header:
    """Header and metadata of a ``.mlc`` file, without touching the codes."""
    with Reader(path) as r:
        return r.header
