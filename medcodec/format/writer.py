"""Writing `.mlc` files: :func:`write` (one atomic, never-overwrite write) and
:func:`truncate` (keep the first k iterations)."""

from __future__ import annotations

import dataclasses
import struct

from ..errors import ContainerError
from ..io.atomic import atomic_write
from .header import Header, encode_header, encode_meta, validate_header
from .layers import BoundedErrorLayer, SlicePrediction, TileMap, WaveletLayer, valid_wavelet_step
from .reader import Reader
from .spec import (CHUNK, CODE_PREFIX, CRC, END_CHUNK, GRID_FIELDS, INDEX_ENTRY, PREAMBLE_SIZE, RESD_PREFIX,
                   RIDX_PREFIX, TRANSFORM_CDF97, VERSION, XIDX_PREFIX, XRES_PREFIX, frame_chunk,
                   layer_index_size, layer_prefix, preamble)


def _check_parts(header: Header, codes, bounded_error, tiles, wavelet) -> None:
    validate_header(header)
    if tiles is not None and (tiles.counts.shape[0] != header.slices or tiles.counts.max(initial=0) > 255):
        raise ContainerError("tile counts do not match the header")
    if len(codes) != header.slices or any(len(c) != header.iterations for c in codes):
        raise ContainerError("codes do not match the header's slice and iteration counts")
    if bounded_error is not None and (len(bounded_error.slices) != header.slices
                                      or not 0 <= bounded_error.max_error < 1 << 16):
        raise ContainerError("bounded-error layer does not match the header")
    if wavelet is not None and (bounded_error is not None or len(wavelet.slices) != header.slices
                                or not valid_wavelet_step(wavelet.delta, wavelet.rho)):
        raise ContainerError("wavelet layer does not match the header")
    prediction = _prediction(bounded_error, wavelet)
    if prediction is not None:
        try:  # the checks a reader makes
            SlicePrediction.decode(prediction.encode(), header)
        except (ContainerError, ValueError) as e:
            raise ContainerError(f"inter-slice prediction does not fit the file: {e}") from e


def _prediction(bounded_error, wavelet) -> SlicePrediction | None:
    """The residual layer's inter-slice prediction (ZPRD), if any."""
    layer = bounded_error if bounded_error is not None else wavelet
    return None if layer is None else layer.prediction


def _version(header: Header, tiles, bounded_error, wavelet) -> tuple[int, int]:
    """The lowest format version that has every chunk a file uses."""
    if bounded_error is not None and bounded_error.coding == 1:
        return VERSION
    if bounded_error is not None and bounded_error.prediction is not None:
        return (1, 5)
    if wavelet is not None:
        return (1, 4) if wavelet.prediction is not None else (1, 3)
    return (1, 2) if tiles is not None or header.grid is not None else (1, 1)


def _indexed(kind: bytes, payloads, offset: int, bodies: list) -> tuple[list[bytes], int]:
    """Frame each payload as a ``kind`` chunk at ``offset`` onwards (appended to ``bodies``);
    returns their index entries and the offset after them."""
    entries = []
    for payload in payloads:
        body = frame_chunk(kind, payload)
        entries.append(INDEX_ENTRY.pack(offset, len(body) - CHUNK.size - CRC.size))
        bodies.append(body)
        offset += len(body)
    return entries, offset


def _layer_chunks(header: Header, bounded_error, wavelet, offset: int, bodies: list) -> list[bytes]:
    """The RIDX or XIDX chunk (empty list without a layer); its RESD/XRES go to ``bodies``."""
    if bounded_error is not None:
        index_kind, kind = b"RIDX", b"RESD"
        prefix = RIDX_PREFIX.pack(bounded_error.max_error, header.slices)
        payloads = [RESD_PREFIX.pack(s, bounded_error.coding, cb, cf) + d for s, (cb, cf, d) in enumerate(bounded_error.slices)]
    elif wavelet is not None:
        index_kind, kind = b"XIDX", b"XRES"
        prefix = XIDX_PREFIX.pack(TRANSFORM_CDF97, wavelet.delta, wavelet.rho, header.slices)
        payloads = [XRES_PREFIX.pack(s, levels) + d for s, (levels, d) in enumerate(wavelet.slices)]
    else:
        return []
    entries, _ = _indexed(kind, payloads, offset, bodies)
    return [frame_chunk(index_kind, prefix + b"".join(entries))]


def write(path, header: Header, codes: list[list[tuple[int, bytes]]], overwrite: bool = False,
          bounded_error: BoundedErrorLayer | None = None, tiles: TileMap | None = None,
          wavelet: WaveletLayer | None = None) -> int:
    """Write a file. ``codes[s][t]`` = (coding, data) of slice s, iteration t; ``bounded_error``
    adds the bounded-error layer, ``wavelet`` the wavelet layer (not both), ``tiles`` the
    adaptive tile counts. Returns the file size in bytes."""
    _check_parts(header, codes, bounded_error, tiles, wavelet)
    head = frame_chunk(b"HEAD", encode_header(header))
    meta = frame_chunk(b"META", encode_meta(header.metadata))
    if header.grid is not None:
        meta += frame_chunk(b"GRID", GRID_FIELDS.pack(*header.grid))
    if tiles is not None:
        meta += frame_chunk(b"TILE", tiles.encode())
    if _prediction(bounded_error, wavelet) is not None:
        meta += frame_chunk(b"ZPRD", _prediction(bounded_error, wavelet).encode())
    n_entries = header.slices * header.iterations
    index_len = CHUNK.size + 4 + INDEX_ENTRY.size * n_entries + CRC.size
    layer_index_len = layer_index_size(layer_prefix(bounded_error is not None, wavelet is not None), header.slices)
    bodies: list[bytes] = []
    entries, offset = _indexed(b"CODE", (CODE_PREFIX.pack(s, t, coding) + data
                                         for s, per_slice in enumerate(codes)
                                         for t, (coding, data) in enumerate(per_slice)),
                               PREAMBLE_SIZE + len(head) + len(meta) + layer_index_len + index_len, bodies)
    index = frame_chunk(b"INDX", struct.pack("<I", n_entries) + b"".join(entries))
    layer_index = _layer_chunks(header, bounded_error, wavelet, offset, bodies)
    # the lowest version that has every chunk used, so older readers open what they can
    version = _version(header, tiles, bounded_error, wavelet)
    parts = [preamble(*version), head, meta, *layer_index, index, *bodies, END_CHUNK]
    atomic_write(path, parts, overwrite=overwrite)
    return sum(len(p) for p in parts)


def truncate(src, dst, iterations: int, overwrite: bool = False) -> int:
    """Write a copy of ``src`` keeping only the first ``iterations`` of every slice.

    Because iteration t depends only on iterations <= t, the result is the file an encode
    with that many iterations writes. A residual layer refers to all stored iterations, so
    it is kept only when all are. Returns the new file size.
    """
    with Reader(src) as r:
        h = r.header
        if not 1 <= iterations <= h.iterations:
            raise ContainerError(f"can keep 1 to {h.iterations} iterations, not {iterations}")
        codes = [[r.read_codes(s, t) for t in range(iterations)] for s in range(h.slices)]
        bounded_error = wavelet = None
        if r.max_error is not None and iterations == h.iterations:
            bounded_error = BoundedErrorLayer(r.max_error, [r.read_bounded_error(s) for s in range(h.slices)],
                                              r.prediction, r.bounded_error_coding)
        if r.wavelet is not None and iterations == h.iterations:
            wavelet = WaveletLayer(*r.wavelet, [r.read_wavelet(s) for s in range(h.slices)], r.prediction)
        tiles = r.tiles
    h = dataclasses.replace(h, iterations=iterations)
    return write(dst, h, codes, overwrite=overwrite, bounded_error=bounded_error, tiles=tiles, wavelet=wavelet)
