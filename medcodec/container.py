"""The ``.mlc`` container, format version 1.3 (the one place that defines it).

Layout (all integers little-endian)::

    file   = magic(8) version_major(u16) version_minor(u16) crc32(u32) chunk* END
    magic  = 89 'M' 'L' 'C' 0D 0A 1A 0A      (crc32 covers magic and version)
    chunk  = type(4 ASCII) length(u64) payload(length) crc32(u32)

The CRC32 covers type, length and payload. A chunk type whose first letter is upper-case
is *required*: a reader that does not know it must refuse the file (it needs a newer
medcodec). Lower-case first letter: *optional*, skipped when unknown. Chunks of v1, in
file order:

``HEAD`` (required) header, fixed layout, readable without decoding any pixel::

    u8  ndim (2..4)       u8 pixel type (PIXEL_TYPES)   u8 components (1)   u8 reserved
    u64 size[4]           (x, y, z, t as in SimpleITK; unused entries 1)
    f64 spacing[4]        f64 origin[4]        f64 direction[16] (row-major ndim x ndim)
    f64 window_lo         f64 window_hi        (intensity window mapped to [-0.5, 0.5])
    u32 slices            u32 height   u32 width   (coded 2D slices and their size)
    u32 coded_height      u32 coded_width          (padded to the model's stride)
    u16 iterations        u16 bits                 (iterations stored, code channels)
    u16 model_id length   model_id (UTF-8), e.g. ``tiny-1a2b3c4d``

``META`` (required) metadata dictionary: u32 count, then count x
(u32 key length, key UTF-8, u32 value length, value UTF-8).

``INDX`` (required) one entry per (slice, iteration), slice-major:
u64 offset of the CODE chunk from the start of the file, u32 its payload length.

Index offsets are absolute, strictly increasing and point past the INDX chunk (a later
version may place optional chunks between CODE chunks; they are skipped).

``CODE`` (required) u32 slice, u16 iteration, u8 coding, then the codes of that slice and
iteration: coding 0 = ``numpy.packbits`` of (codes > 0) in (h, w, bits) C order; coding 1 =
the same, zlib-deflated; coding 2 (since 1.1) = context-model range coding, defined in
:mod:`medcodec.entropy` (its model state carries from iteration to iteration of a slice, so
iterations are decoded in order). A reader decodes the first k iterations of any slice by
reading only those chunks (progressive decoding).

Versions: 1.0 wrote codings 0 and 1 only; 1.1 adds coding 2 and the residual layer; 1.2
adds the TILE and GRID chunks (a 1.1 reader refuses such files: unknown required chunks);
1.3 adds the transform residual layer (XIDX, XRES).
A writer stamps the lowest version whose chunks it uses: files without tiles say 1.1. A 1.1 reader reads 1.0 files
unchanged (tests/data/golden_v1.mlc); a 1.0 reader refuses coding 2 with "unknown coding".

``RIDX`` (required, since 1.1, only in files with a residual layer; between META and INDX)
u16 max_error E, u32 n = slices, then n x (u64 offset, u32 payload length) of the RESD
chunks. ``RESD`` (required, after all CODE chunks) u32 slice, u8 coding (0), u32 CRC32 of
the base reconstruction (the decoder's output after all stored iterations, in the pixel
type, C order), u32 CRC32 of the final slice, then the residual stream of
:mod:`medcodec.residual`: the final slice is within E of the original everywhere. A reader
that decodes fewer iterations than stored ignores the residual layer.

``TILE`` (required, since 1.2, only in files with adaptive tiles; right after META) u16
cells (tile side in code cells; a code cell is FxF pixels of the model), u32 slices, u16
tiles_y, u16 tiles_x, then zlib-deflated u8 counts (slices, tiles_y, tiles_x), row-major: the
iterations coded for each tile. A tile of count c has codes in iterations 0..c-1 only; each
CODE chunk of iteration t holds only the cells of tiles with count > t (see
:mod:`medcodec.entropy`), and the decoder stops adding to those pixels after c iterations
(:mod:`medcodec.model.codec`). Counts may exceed the stored iterations (a truncated file
keeps its TILE chunk unchanged); the effective count is min(count, iterations).

``GRID`` (required, since 1.2, only for slices larger than the network codes in one piece;
right after META) u16 tiles_y, u16 tiles_x: every 2D slice of the image (width x height =
size[0] x size[1]) is cut into tiles_y x tiles_x pieces of ``height`` x ``width`` pixels
(HEAD's slice fields then describe one piece; the last row/column of pieces extends past
the image with its edge pixels repeated and is cropped when decoding). The pieces are the
coded slices, in order (image slice, tile row, tile column), so HEAD's ``slices`` =
prod(size[2:]) x tiles_y x tiles_x and everything else (index, CODE, TILE, RESD) counts
pieces.

``XIDX`` (required, since 1.3, only in files with a transform residual layer; between META
and INDX, never with RIDX) u8 transform (1 = CDF 9/7 wavelet), f64 step delta, f64
reconstruction offset rho, u32 n = slices, then n x (u64 offset, u32 payload length) of the
XRES chunks. ``XRES`` (required, after all CODE chunks) u32 slice, u8 decomposition levels
(must equal :func:`medcodec.wavelet.levels_for` of the slice size), then the stream of
:mod:`medcodec.transform_residual`; the decoded slice is the base plus the decoded residual,
rounded and clipped to the window. No error bound: it serves quality (PSNR) targets. A
reader that decodes fewer iterations than stored ignores it.

``END `` (required, empty) is the last chunk of a complete file; nothing may follow it.

Later versions may add chunks and fields but keep every v1 file readable: a v1.x reader
reads any 1.y file whose required chunks it knows; a major version bump is refused with a
message naming it.
"""

from __future__ import annotations

import dataclasses
import math
import os
import struct
import tempfile
import zlib
from pathlib import Path
from typing import BinaryIO, Iterable

import numpy as np

from .errors import ContainerError, TruncatedFileError, UnsupportedVersionError, WriteError

MAGIC = b"\x89MLC\r\n\x1a\n"
VERSION = (1, 3)
PIXEL_TYPES = {1: "uint8", 2: "int8", 3: "uint16", 4: "int16", 5: "uint32", 6: "int32",
               7: "float32", 8: "float64"}
PIXEL_CODES = {v: k for k, v in PIXEL_TYPES.items()}
KNOWN_REQUIRED = {b"HEAD", b"META", b"INDX", b"CODE", b"END ", b"RIDX", b"RESD", b"TILE", b"GRID", b"XIDX", b"XRES"}
CODING_RAW, CODING_ZLIB = 0, 1

_CHUNK = struct.Struct("<4sQ")
_CRC = struct.Struct("<I")
_HEAD_FIXED = struct.Struct("<BBBB4Q4d4d16d2d5I2H")
_INDEX_ENTRY = struct.Struct("<QI")
_CODE_PREFIX = struct.Struct("<IHB")
_RIDX_PREFIX = struct.Struct("<HI")
_RESD_PREFIX = struct.Struct("<IBII")
_XIDX_PREFIX = struct.Struct("<BddI")
_XRES_PREFIX = struct.Struct("<IB")
_TILE_PREFIX = struct.Struct("<HIHH")
TRANSFORM_CDF97 = 1
_GRID = struct.Struct("<HH")


@dataclasses.dataclass
class TileMap:
    """Adaptive tiles: ``counts`` uint8 (slices, tiles_y, tiles_x) iterations per tile of
    ``cells`` x ``cells`` code cells."""

    cells: int
    counts: np.ndarray

    def cell_counts(self, grid_h: int, grid_w: int) -> np.ndarray:
        """Per code cell counts (slices, grid_h, grid_w), int32."""
        # by index, not np.repeat: a forged tile size must not allocate beyond the grid
        rows = np.minimum(np.arange(grid_h) // self.cells, self.counts.shape[1] - 1)
        cols = np.minimum(np.arange(grid_w) // self.cells, self.counts.shape[2] - 1)
        return self.counts.astype(np.int32)[:, rows][:, :, cols]

    def encode(self) -> bytes:
        s, ty, tx = self.counts.shape
        return _TILE_PREFIX.pack(self.cells, s, ty, tx) + zlib.compress(
            np.ascontiguousarray(self.counts, np.uint8).tobytes(), 9)

    @staticmethod
    def decode(payload: bytes, header: "Header") -> "TileMap":
        if len(payload) < _TILE_PREFIX.size:
            raise ContainerError("TILE chunk too short")
        cells, s, ty, tx = _TILE_PREFIX.unpack_from(payload)
        if cells < 1 or s != header.slices or not (1 <= ty <= header.coded_height and 1 <= tx <= header.coded_width):
            raise ContainerError("TILE chunk does not match the header")
        n = s * ty * tx
        inflater = zlib.decompressobj()
        try:
            raw = inflater.decompress(payload[_TILE_PREFIX.size :], n + 1)
        except zlib.error as e:
            raise ContainerError("TILE chunk does not inflate") from e
        if len(raw) != n or not inflater.eof or inflater.unused_data:
            raise ContainerError("TILE chunk holds the wrong number of tile counts")
        return TileMap(cells, np.frombuffer(raw, np.uint8).reshape(s, ty, tx))


@dataclasses.dataclass
class ResidualLayer:
    """The bounded-error layer: max_error E and per slice (crc_base, crc_final, stream)."""

    max_error: int
    slices: list[tuple[int, int, bytes]]


@dataclasses.dataclass
class TransformLayer:
    """The transform residual layer: quantizer step ``delta`` and reconstruction offset
    ``rho`` (see :mod:`medcodec.transform_residual`), per slice (levels, stream)."""

    delta: float
    rho: float
    slices: list[tuple[int, bytes]]


@dataclasses.dataclass
class Header:
    """Everything about a ``.mlc`` file that is known without decoding pixels."""

    ndim: int
    pixel_type: str
    size: tuple[int, ...]           # SimpleITK order (x, y[, z[, t]])
    spacing: tuple[float, ...]
    origin: tuple[float, ...]
    direction: tuple[float, ...]    # ndim*ndim, row-major
    window: tuple[float, float]
    slices: int
    height: int
    width: int
    coded_height: int
    coded_width: int
    iterations: int
    bits: int
    model_id: str
    components: int = 1
    metadata: dict[str, str] = dataclasses.field(default_factory=dict)
    version: tuple[int, int] = VERSION
    grid: tuple[int, int] | None = None  # (tiles_y, tiles_x) pieces per slice (GRID chunk)

    @property
    def image_slices(self) -> int:
        """2D slices of the image (z, or t*z for 4D); ``slices`` counts coded pieces."""
        return math.prod(self.size[2:])

    def code_shape(self, factor: int) -> tuple[int, int, int]:
        """(h, w, bits) of one slice's codes for a model of stride ``factor``."""
        return self.coded_height // factor, self.coded_width // factor, self.bits


def _pad4(values: Iterable[float], fill: float, n: int = 4) -> list:
    v = list(values)
    return v + [fill] * (n - len(v))


def _encode_header(h: Header) -> bytes:
    if not 2 <= h.ndim <= 4:
        raise ContainerError(f"ndim must be 2..4, got {h.ndim}")
    direction = np.eye(4)
    direction[: h.ndim, : h.ndim] = np.asarray(h.direction, dtype=np.float64).reshape(h.ndim, h.ndim)
    mid = h.model_id.encode("utf-8")
    fixed = _HEAD_FIXED.pack(
        h.ndim, PIXEL_CODES[h.pixel_type], h.components, 0,
        *_pad4(h.size, 1), *_pad4(h.spacing, 1.0), *_pad4(h.origin, 0.0), *direction.ravel(),
        float(h.window[0]), float(h.window[1]),
        h.slices, h.height, h.width, h.coded_height, h.coded_width, h.iterations, h.bits,
    )
    return fixed + struct.pack("<H", len(mid)) + mid


def _decode_header(payload: bytes) -> Header:
    n = _HEAD_FIXED.size
    if len(payload) < n + 2:
        raise ContainerError("HEAD chunk too short")
    v = _HEAD_FIXED.unpack_from(payload)
    ndim, ptype, comps = v[0], v[1], v[2]
    if not 2 <= ndim <= 4 or ptype not in PIXEL_TYPES:
        raise ContainerError(f"HEAD chunk has invalid ndim {ndim} or pixel type {ptype}")
    size, spacing, origin = v[4:8], v[8:12], v[12:16]
    direction = np.asarray(v[16:32]).reshape(4, 4)[:ndim, :ndim]
    (mlen,) = struct.unpack_from("<H", payload, n)
    if len(payload) != n + 2 + mlen:
        raise ContainerError("HEAD chunk length does not match its model id")
    try:
        model_id = payload[n + 2 :].decode("utf-8")
    except UnicodeDecodeError as e:
        raise ContainerError("HEAD chunk has an invalid model id") from e
    header = Header(
        ndim=ndim, pixel_type=PIXEL_TYPES[ptype], components=comps,
        size=tuple(int(s) for s in size[:ndim]), spacing=tuple(spacing[:ndim]),
        origin=tuple(origin[:ndim]), direction=tuple(direction.ravel().tolist()),
        window=(v[32], v[33]), slices=v[34], height=v[35], width=v[36],
        coded_height=v[37], coded_width=v[38], iterations=v[39], bits=v[40], model_id=model_id,
    )
    return header


MAX_VOXELS_DEFAULT = 1 << 34  # 16 Gi voxels; MEDCODEC_MAX_VOXELS overrides
# One coded slice (or piece, see GRID) goes through the network whole: ~0.6 GiB per
# megapixel to encode. The writer cuts slices into pieces of at most 2048 x 2048
# (:func:`medcodec.prep.piece_grid`); a reader refuses coded slices above 2^26 pixels (a
# forged header); MEDCODEC_MAX_SLICE_PIXELS overrides.
MAX_SLICE_PIXELS_DEFAULT = 1 << 26


def _limit(name: str, default: int) -> int:
    try:
        return int(os.environ.get(name, default))
    except ValueError:
        return default


def max_voxels() -> int:
    """Decompression-bomb limit: the largest image a reader will allocate."""
    return _limit("MEDCODEC_MAX_VOXELS", MAX_VOXELS_DEFAULT)


def max_slice_pixels() -> int:
    """The largest coded slice (or piece) a reader accepts."""
    return _limit("MEDCODEC_MAX_SLICE_PIXELS", MAX_SLICE_PIXELS_DEFAULT)


def validate_header(h: Header) -> None:
    """Check that the header's fields (and the GRID pieces) agree with each other and are
    sane, before any allocation. Raises ContainerError naming the first problem."""

    def bad(msg):
        raise ContainerError(f"HEAD chunk is inconsistent: {msg}")

    if h.components != 1:
        bad(f"{h.components} components per pixel (v1 codes scalar images only)")
    if any(s < 1 for s in h.size):
        bad(f"size {h.size}")
    ty, tx = h.grid or (1, 1)
    if ty < 1 or tx < 1:
        bad(f"grid of {ty}x{tx} pieces")
    # every row/column of pieces must hold image pixels: no piece lies wholly outside
    if not ((ty - 1) * h.height < h.size[1] <= ty * h.height and (tx - 1) * h.width < h.size[0] <= tx * h.width):
        bad(f"size {h.size} vs slice {h.width}x{h.height}" + (f" in {ty}x{tx} pieces" if h.grid else ""))
    if h.grid is None and (h.size[0], h.size[1]) != (h.width, h.height):
        bad(f"size {h.size} vs slice {h.width}x{h.height}")
    if h.image_slices * ty * tx != h.slices:
        bad(f"size {h.size} vs {h.slices} slices")
    voxels = math.prod(h.size)
    if voxels > max_voxels():
        raise ContainerError(f"image of {voxels} voxels exceeds the limit of {max_voxels()} "
                             "(raise MEDCODEC_MAX_VOXELS if the file is trusted)")
    if h.height * h.width > max_slice_pixels():
        raise ContainerError(f"a {h.width}x{h.height} slice exceeds the limit of {max_slice_pixels()} pixels "
                             "per slice coded in one piece (raise MEDCODEC_MAX_SLICE_PIXELS if memory allows)")
    if not (h.height <= h.coded_height <= 2 * h.height + 64 and h.width <= h.coded_width <= 2 * h.width + 64):
        bad(f"coded size {h.coded_height}x{h.coded_width} for a {h.height}x{h.width} slice")
    if h.iterations < 1 or h.bits < 1:
        bad(f"{h.iterations} iterations, {h.bits} bits")
    lo, hi = h.window
    if not (math.isfinite(lo) and math.isfinite(hi) and lo <= hi):
        bad(f"intensity window {h.window}")
    if not all(math.isfinite(v) for v in (*h.spacing, *h.origin, *h.direction)) or min(h.spacing) <= 0:
        bad("non-finite or non-positive geometry")


def _encode_meta(meta: dict[str, str]) -> bytes:
    out = [struct.pack("<I", len(meta))]
    for k, val in meta.items():
        kb, vb = str(k).encode("utf-8", "replace"), str(val).encode("utf-8", "replace")
        out += [struct.pack("<I", len(kb)), kb, struct.pack("<I", len(vb)), vb]
    return b"".join(out)


def _decode_meta(payload: bytes) -> dict[str, str]:
    try:
        (count,) = struct.unpack_from("<I", payload)
        pos, meta = 4, {}
        for _ in range(count):
            parts = []
            for _ in range(2):
                (n,) = struct.unpack_from("<I", payload, pos)
                if pos + 4 + n > len(payload):
                    raise ContainerError("META chunk entry overruns the chunk")
                parts.append(payload[pos + 4 : pos + 4 + n].decode("utf-8"))
                pos += 4 + n
            meta[parts[0]] = parts[1]
    except (struct.error, UnicodeDecodeError) as e:
        raise ContainerError("META chunk is malformed") from e
    if pos != len(payload):
        raise ContainerError("META chunk has trailing bytes")
    return meta


_PREAMBLE_SIZE = len(MAGIC) + 8
_END_CHUNK = _CHUNK.pack(b"END ", 0) + _CRC.pack(zlib.crc32(_CHUNK.pack(b"END ", 0)))


def _preamble(major: int, minor: int) -> bytes:
    head = MAGIC + struct.pack("<HH", major, minor)
    return head + _CRC.pack(zlib.crc32(head))


def _chunk(ctype: bytes, payload: bytes) -> bytes:
    head = _CHUNK.pack(ctype, len(payload))
    return head + payload + _CRC.pack(zlib.crc32(head + payload))


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
    elif coding == 2:  # stateful: medcodec.entropy.decode_slice decodes it
        raise ContainerError("CODE chunk is context-coded; decode it with medcodec.entropy.decode_slice")
    elif coding != CODING_RAW:
        raise UnsupportedVersionError(f"CODE chunk uses unknown coding {coding}; upgrade medcodec")
    if len(data) != (n + 7) // 8:
        raise ContainerError("CODE chunk holds the wrong number of bits for its slice")
    bits = np.unpackbits(np.frombuffer(data, np.uint8), count=n)
    return (bits.astype(np.int8) * 2 - 1).reshape(shape)


def move_into_place(tmp: str | os.PathLike, path: str | os.PathLike, overwrite: bool = False) -> None:
    """Rename a complete file ``tmp`` (same folder) onto ``path``; without ``overwrite`` an
    existing ``path`` is never replaced (WriteError) and ``tmp`` is removed either way."""
    if overwrite:
        os.replace(tmp, path)
        return
    # link() fails if path appeared meanwhile: never clobber a file we did not own
    try:
        os.link(tmp, path)
    except FileExistsError:
        raise WriteError(f"{path} exists; use --force (overwrite=True) to replace it")
    except OSError:
        os.replace(tmp, path)  # filesystems without hard links
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def atomic_write(path: str | os.PathLike, parts: Iterable[bytes], overwrite: bool = False) -> None:
    """Write ``parts`` to a temporary file beside ``path``, fsync, then rename onto it.

    Without ``overwrite`` an existing ``path`` is never replaced. No partial file remains
    at ``path`` or beside it if anything fails.
    """
    from .imagefiles import check_output

    path = check_output(path, overwrite)
    parent = path.parent
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=parent)
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # as a plain open() would create it, not mkstemp's 0600
        with os.fdopen(fd, "wb") as f:
            for p in parts:
                f.write(p)
            f.flush()
            os.fsync(f.fileno())
        move_into_place(tmp, path, overwrite)
    except BaseException as e:
        if os.path.exists(tmp):
            os.unlink(tmp)
        if isinstance(e, OSError) and not isinstance(e, WriteError):
            raise WriteError(f"could not write {path}: {e.strerror or e}") from e
        raise


def valid_transform(delta: float, rho: float) -> bool:
    """Whether a wavelet layer's step and reconstruction offset are in the format's range."""
    return math.isfinite(delta) and 0 < delta < 1e300 and math.isfinite(rho) and 0 <= rho < 1


def write(path, header: Header, codes: list[list[tuple[int, bytes]]], overwrite: bool = False,
          residual: ResidualLayer | None = None, tiles: TileMap | None = None,
          transform: TransformLayer | None = None) -> int:
    """Write a file. ``codes[s][t]`` = (coding, data) of slice s, iteration t; ``residual``
    adds the bounded-error layer, ``transform`` the transform residual layer (not both),
    ``tiles`` the adaptive tile counts. Returns the file size in bytes."""
    validate_header(header)
    if tiles is not None and (tiles.counts.shape[0] != header.slices or tiles.counts.max(initial=0) > 255):
        raise ContainerError("tile counts do not match the header")
    if len(codes) != header.slices or any(len(c) != header.iterations for c in codes):
        raise ContainerError("codes do not match the header's slice and iteration counts")
    if residual is not None and (len(residual.slices) != header.slices or not 0 <= residual.max_error < 1 << 16):
        raise ContainerError("residual layer does not match the header")
    if transform is not None and (residual is not None or len(transform.slices) != header.slices
                                  or not valid_transform(transform.delta, transform.rho)):
        raise ContainerError("transform residual layer does not match the header")
    head = _chunk(b"HEAD", _encode_header(header))
    meta = _chunk(b"META", _encode_meta(header.metadata))
    if header.grid is not None:
        meta += _chunk(b"GRID", _GRID.pack(*header.grid))
    if tiles is not None:
        meta += _chunk(b"TILE", tiles.encode())
    n_entries = header.slices * header.iterations
    index_len = _CHUNK.size + 4 + _INDEX_ENTRY.size * n_entries + _CRC.size
    ridx_len = _layer_index_size(_layer_prefix(residual is not None, transform is not None), header.slices)
    offset = _PREAMBLE_SIZE + len(head) + len(meta) + ridx_len + index_len
    entries, bodies = [], []
    for s, per_slice in enumerate(codes):
        for t, (coding, data) in enumerate(per_slice):
            body = _chunk(b"CODE", _CODE_PREFIX.pack(s, t, coding) + data)
            entries.append(_INDEX_ENTRY.pack(offset, len(body) - _CHUNK.size - _CRC.size))
            bodies.append(body)
            offset += len(body)
    index = _chunk(b"INDX", struct.pack("<I", n_entries) + b"".join(entries))
    ridx = []
    if residual is not None or transform is not None:
        if residual is not None:
            kind, prefix = b"RESD", _RIDX_PREFIX.pack(residual.max_error, header.slices)
            per_slice = [_RESD_PREFIX.pack(s, 0, cb, cf) + d for s, (cb, cf, d) in enumerate(residual.slices)]
        else:
            kind, prefix = b"XRES", _XIDX_PREFIX.pack(TRANSFORM_CDF97, transform.delta, transform.rho, header.slices)
            per_slice = [_XRES_PREFIX.pack(s, levels) + d for s, (levels, d) in enumerate(transform.slices)]
        r_entries = []
        for payload in per_slice:
            body = _chunk(kind, payload)
            r_entries.append(_INDEX_ENTRY.pack(offset, len(body) - _CHUNK.size - _CRC.size))
            bodies.append(body)
            offset += len(body)
        ridx = [_chunk(b"RIDX" if residual is not None else b"XIDX", prefix + b"".join(r_entries))]
    # the lowest version that has every chunk used, so older readers open what they can
    version = VERSION if transform is not None else (
        (1, 2) if tiles is not None or header.grid is not None else (1, 1))
    parts = [_preamble(*version), head, meta, *ridx, index, *bodies, _END_CHUNK]
    atomic_write(path, parts, overwrite=overwrite)
    return sum(len(p) for p in parts)


def _layer_index_size(prefix: struct.Struct | None, n_slices: int) -> int:
    """Bytes of a RIDX or XIDX chunk with this prefix (None: no residual layer, 0)."""
    return 0 if prefix is None else _CHUNK.size + prefix.size + _INDEX_ENTRY.size * n_slices + _CRC.size


def _layer_prefix(bounded: bool, wavelet: bool) -> struct.Struct | None:
    return _RIDX_PREFIX if bounded else _XIDX_PREFIX if wavelet else None


class Reader:
    """Random access to a ``.mlc`` file: header, metadata, and any (slice, iteration) codes.

    Opening reads and verifies only the header, metadata and index chunks.
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        try:
            self._f: BinaryIO = open(self.path, "rb")
        except OSError as e:
            from .errors import ReadError

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
        ctype, length = _CHUNK.unpack(self._read_exact(_CHUNK.size, "chunk header"))
        if length > self.file_size:
            raise TruncatedFileError(f"{self.path.name}: chunk {ctype!r} claims {length} bytes, "
                                     f"more than the file holds; it is truncated or corrupted")
        payload = self._read_exact(length, f"chunk {ctype!r}")
        (crc,) = _CRC.unpack(self._read_exact(_CRC.size, "chunk checksum"))
        if zlib.crc32(_CHUNK.pack(ctype, length) + payload) != crc:
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
        (crc,) = _CRC.unpack(self._read_exact(4, "version checksum"))
        if zlib.crc32(magic + version) != crc:
            raise ContainerError(f"{self.path.name}: checksum mismatch in the format version; "
                                 "the file is corrupted")
        major, minor = struct.unpack("<HH", version)
        if major != VERSION[0]:
            raise UnsupportedVersionError(
                f"{self.path.name} is .mlc format version {major}.{minor}; this medcodec reads "
                f"version {VERSION[0]}.x: upgrade medcodec")
        self.version = (major, minor)
        header = meta = index = ridx = xidx = tile = grid = None
        while index is None:
            ctype, payload = self._read_chunk()
            if ctype == b"HEAD":
                header = _decode_header(payload)
            elif ctype == b"META":
                meta = _decode_meta(payload)
            elif ctype == b"INDX":
                index = payload
            elif ctype == b"RIDX":
                ridx = payload
            elif ctype == b"XIDX":
                xidx = payload
            elif ctype == b"TILE":
                tile = payload
            elif ctype == b"GRID":
                if len(payload) != _GRID.size:
                    raise ContainerError(f"{self.path.name}: GRID chunk has the wrong size")
                grid = _GRID.unpack(payload)
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
        self._parse_residual_index(ridx)
        self._parse_transform_index(xidx)
        self.tiles = None if tile is None else TileMap.decode(tile, header)

    def _parse_index(self, payload: bytes) -> None:
        h = self.header
        if len(payload) < 4:
            raise ContainerError(f"{self.path.name}: INDX chunk too short")
        (n,) = struct.unpack_from("<I", payload)
        if n != h.slices * h.iterations or len(payload) != 4 + n * _INDEX_ENTRY.size:
            raise ContainerError(f"{self.path.name}: index size does not match the header")
        arr = np.frombuffer(payload, dtype=np.dtype([("off", "<u8"), ("len", "<u4")]), offset=4)
        self._index = arr.reshape(h.slices, h.iterations)
        end = self._data_start
        for off, ln in zip(arr["off"].tolist(), arr["len"].tolist()):
            if off < end:
                raise ContainerError(f"{self.path.name}: index offsets are inconsistent")
            end = off + _CHUNK.size + ln + _CRC.size
        if end > self.file_size:
            raise TruncatedFileError(f"{self.path.name}: index points past the end of the file; "
                                     "it is truncated")

    def _layer_index(self, payload: bytes, prefix: struct.Struct) -> tuple[tuple, np.ndarray]:
        """(prefix fields, entries) of a RIDX/XIDX chunk whose prefix ends with u32 n."""
        n_slices = self.header.slices
        if len(payload) != prefix.size + n_slices * _INDEX_ENTRY.size:
            raise ContainerError(f"{self.path.name}: residual index size does not match the header")
        fields = prefix.unpack_from(payload)
        if fields[-1] != n_slices:
            raise ContainerError(f"{self.path.name}: residual index size does not match the header")
        arr = np.frombuffer(payload, dtype=np.dtype([("off", "<u8"), ("len", "<u4")]), offset=prefix.size)
        for off, ln in zip(arr["off"].tolist(), arr["len"].tolist()):
            if off < self._data_start:
                raise ContainerError(f"{self.path.name}: residual index offsets are inconsistent")
            if off + _CHUNK.size + ln + _CRC.size > self.file_size:
                raise TruncatedFileError(f"{self.path.name}: residual index points past the end of "
                                         "the file; it is truncated")
        return fields, arr

    def _parse_residual_index(self, payload: bytes | None) -> None:
        self.max_error = None
        if payload is not None:
            (self.max_error, _), self._residual_index = self._layer_index(payload, _RIDX_PREFIX)

    def _parse_transform_index(self, payload: bytes | None) -> None:
        """XIDX: sets ``self.transform`` = (delta, rho), or None without the layer."""
        self.transform = None
        if payload is None:
            return
        (kind, delta, rho, _), self._transform_index = self._layer_index(payload, _XIDX_PREFIX)
        if kind != TRANSFORM_CDF97:
            raise UnsupportedVersionError(f"{self.path.name} uses residual transform {kind}, unknown to "
                                          "this medcodec; upgrade medcodec")
        if not valid_transform(delta, rho):
            raise ContainerError(f"{self.path.name}: transform residual step {delta!r} / offset {rho!r} "
                                 "is out of range")
        self.transform = (delta, rho)

    def _layer_chunk(self, entry, kind: bytes, prefix: struct.Struct) -> bytes:
        off, ln = entry
        self._f.seek(int(off))
        ctype, payload = self._read_chunk()
        if ctype != kind or len(payload) != ln or len(payload) < prefix.size:
            raise ContainerError(f"{self.path.name}: residual index points to a wrong chunk")
        return payload

    def read_transform(self, slice_index: int) -> tuple[int, bytes]:
        """(levels, stream) of one slice's transform residual, checksum verified."""
        if self.transform is None:
            raise ContainerError(f"{self.path.name} has no transform residual layer")
        payload = self._layer_chunk(self._transform_index[slice_index], b"XRES", _XRES_PREFIX)
        s, levels = _XRES_PREFIX.unpack_from(payload)
        if s != slice_index:
            raise ContainerError(f"{self.path.name}: XRES chunk is out of place")
        return levels, payload[_XRES_PREFIX.size :]

    def read_residual(self, slice_index: int) -> tuple[int, int, bytes]:
        """(crc_base, crc_final, stream) of one slice's residual, checksum verified."""
        if self.max_error is None:
            raise ContainerError(f"{self.path.name} has no residual layer")
        payload = self._layer_chunk(self._residual_index[slice_index], b"RESD", _RESD_PREFIX)
        s, coding, crc_base, crc_final = _RESD_PREFIX.unpack_from(payload)
        if s != slice_index or coding != 0:
            raise ContainerError(f"{self.path.name}: RESD chunk is out of place or of unknown coding")
        return crc_base, crc_final, payload[_RESD_PREFIX.size :]

    def read_codes(self, slice_index: int, iteration: int) -> tuple[int, bytes]:
        """(coding, data) of one slice and iteration, checksum verified."""
        off, ln = self._index[slice_index, iteration]
        self._f.seek(int(off))
        ctype, payload = self._read_chunk()
        if ctype != b"CODE" or len(payload) != ln:
            raise ContainerError(f"{self.path.name}: index points to a wrong chunk")
        s, t, coding = _CODE_PREFIX.unpack_from(payload)
        if (s, t) != (slice_index, iteration):
            raise ContainerError(f"{self.path.name}: CODE chunk is out of place")
        return coding, payload[_CODE_PREFIX.size :]

    def verify_end(self) -> None:
        """Check that the file ends with the END chunk (called after a full read)."""
        end_size = _CHUNK.size + _CRC.size
        if self.file_size < self._data_start + end_size:
            raise TruncatedFileError(f"{self.path.name}: END chunk missing; the file is truncated")
        self._f.seek(self.file_size - end_size)
        if self._f.read(end_size) != _END_CHUNK:
            raise TruncatedFileError(f"{self.path.name}: END chunk missing; the file is truncated "
                                     "or has bytes after its end")

def prefix_sizes(path) -> list[int]:
    """Size in bytes of the file :func:`truncate` writes for k = 1..iterations, from the
    index alone (no rewriting): the layout is fixed, so size(k) = preamble + HEAD + META +
    INDX(k entries per slice) + the first k CODE chunks of every slice + END; with all
    iterations kept (and any residual layer with them) it is the file's own size."""
    with Reader(path) as r:
        h = r.header
        overhead = _CHUNK.size + _CRC.size
        index_full = overhead + 4 + _INDEX_ENTRY.size * h.slices * h.iterations
        ridx = _layer_index_size(_layer_prefix(r.max_error is not None, r.transform is not None), h.slices)
        head_meta = r._data_start - _PREAMBLE_SIZE - index_full - ridx
        chunk_bytes = (r._index["len"].astype(np.int64) + overhead).sum(axis=0).cumsum()
    sizes = [int(_PREAMBLE_SIZE + head_meta + overhead + 4 + _INDEX_ENTRY.size * h.slices * k
                 + chunk_bytes[k - 1] + len(_END_CHUNK)) for k in range(1, h.iterations)]
    return sizes + [r.file_size]


def payload_sizes(path) -> np.ndarray:
    """Bytes of coded bits per (slice, iteration), (slices, iterations) int64: each CODE
    chunk's payload without its slice/iteration/coding prefix."""
    with Reader(path) as r:
        return r._index["len"].astype(np.int64) - _CODE_PREFIX.size


def read_header(path) -> Header:
    """Header and metadata of a ``.mlc`` file, without touching the codes."""
    with Reader(path) as r:
        return r.header


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
        residual = transform = None
        if r.max_error is not None and iterations == h.iterations:
            residual = ResidualLayer(r.max_error, [r.read_residual(s) for s in range(h.slices)])
        if r.transform is not None and iterations == h.iterations:
            transform = TransformLayer(*r.transform, [r.read_transform(s) for s in range(h.slices)])
        tiles = r.tiles
    h = dataclasses.replace(h, iterations=iterations)
    return write(dst, h, codes, overwrite=overwrite, residual=residual, tiles=tiles, transform=transform)
