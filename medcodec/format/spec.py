"""The `.mlc` container format, version 1.6: constants, chunk framing and size limits.

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
:mod:`medcodec.coding.codes` (its model state carries from iteration to iteration of a slice, so
iterations are decoded in order). A reader decodes the first k iterations of any slice by
reading only those chunks (progressive decoding).

Versions: 1.0 wrote codings 0 and 1 only; 1.1 adds coding 2 and the residual layer; 1.2
adds the TILE and GRID chunks (a 1.1 reader refuses such files: unknown required chunks);
1.3 adds the wavelet layer (XIDX, XRES); 1.4 inter-slice prediction (ZPRD) of the wavelet
layer; 1.5 ZPRD with the bounded-error layer too; 1.6 RESD coding 1.
A writer stamps the lowest version whose chunks it uses: files without tiles say 1.1. A 1.1 reader reads 1.0 files
unchanged (tests/data/golden_v1.mlc); a 1.0 reader refuses coding 2 with "unknown coding".

``RIDX`` (required, since 1.1, only in files with a bounded-error layer; between META and INDX)
u16 max_error E, u32 n = slices, then n x (u64 offset, u32 payload length) of the RESD
chunks. ``RESD`` (required, after all CODE chunks) u32 slice, u8 coding (0 up to 1.5, 1 since 1.6: one per file, see
:mod:`medcodec.coding.bounded_error`; in 1.6 with ZPRD an inter slice's adaptive counts
continue from the slice before it), u32 CRC32 of
the base reconstruction (the decoder's output after all stored iterations, in the pixel
type, C order), u32 CRC32 of the final slice, then the residual stream of
:mod:`medcodec.coding.bounded_error`: the final slice is within E of the original everywhere. A reader
that decodes fewer iterations than stored ignores the residual layer.

``TILE`` (required, since 1.2, only in files with adaptive tiles; right after META) u16
cells (tile side in code cells; a code cell is FxF pixels of the model), u32 slices, u16
tiles_y, u16 tiles_x, then zlib-deflated u8 counts (slices, tiles_y, tiles_x), row-major: the
iterations coded for each tile. A tile of count c has codes in iterations 0..c-1 only; each
CODE chunk of iteration t holds only the cells of tiles with count > t (see
:mod:`medcodec.coding.codes`), and the decoder stops adding to those pixels after c iterations
(:mod:`medcodec.model.codec`). Counts may exceed the stored iterations (a truncated file
keeps its TILE chunk unchanged); the effective count is min(count, iterations).

``GRID`` (required, since 1.2, only for slices larger than the network codes in one piece;
right after META) u16 pieces_y, u16 pieces_x: every 2D slice of the image (width x height =
size[0] x size[1]) is cut into pieces_y x pieces_x pieces of ``height`` x ``width`` pixels
(HEAD's slice fields then describe one piece; the last row/column of pieces extends past
the image with its edge pixels repeated and is cropped when decoding). The pieces are the
coded slices, in order (image slice, piece row, piece column), so HEAD's ``slices`` =
prod(size[2:]) x pieces_y x pieces_x and everything else (index, CODE, TILE, RESD) counts
pieces.

``XIDX`` (required, since 1.3, only in files with a wavelet layer; between META
and INDX, never with RIDX) u8 transform (1 = CDF 9/7 wavelet), f64 step delta, f64
reconstruction offset rho, u32 n = slices, then n x (u64 offset, u32 payload length) of the
XRES chunks. ``XRES`` (required, after all CODE chunks) u32 slice, u8 decomposition levels
(must equal :func:`medcodec.coding.wavelet.levels_for` of the slice size), then the stream of
:mod:`medcodec.coding.wavelet_layer`; the decoded slice is the base plus the decoded residual,
rounded and clipped to the window. No error bound: it serves quality (PSNR) targets. A
reader that decodes fewer iterations than stored ignores it.

``ZPRD`` (required, since 1.4 in files with a wavelet layer, since 1.5 also with a
bounded-error layer; right after META, GRID and TILE) inter-slice prediction of the residual
layer (:mod:`medcodec.coding.interslice`): u16
key interval N (every N-th slice is intra; 0: only the first), u16 bands B (= 1 + 3 x the
decomposition levels), u32 n = slices, then n x (u8 mode, B x i8 weights). Mode 0 (intra):
the slice's base is as without ZPRD; mode 1 (inter): its base is the prediction from the
decoded slice before it, mid + W^-1(w_b / 64 x W(previous - mid)_b), rounded and clipped to
the window (mid: the window's middle in the pixel type). Only for 3-D images not cut into
pieces (no GRID); slice 0 and every N-th slice are intra. With the bounded-error layer the
prediction is the base its RESD stream refines (the bound holds over it); the RESD base CRC
stays that of the intra base (the network's reconstruction).

``END `` (required, empty) is the last chunk of a complete file; nothing may follow it.

Later versions may add chunks and fields but keep every v1 file readable: a v1.x reader
reads any 1.y file whose required chunks it knows; a major version bump is refused with a
message naming it.
"""

from __future__ import annotations

import os
import struct
import zlib

MAGIC = b"\x89MLC\r\n\x1a\n"
VERSION = (1, 6)
PIXEL_TYPES = {1: "uint8", 2: "int8", 3: "uint16", 4: "int16", 5: "uint32", 6: "int32",
               7: "float32", 8: "float64"}
PIXEL_CODES = {v: k for k, v in PIXEL_TYPES.items()}
KNOWN_REQUIRED = {b"HEAD", b"META", b"INDX", b"CODE", b"END ", b"RIDX", b"RESD", b"TILE", b"GRID", b"XIDX", b"XRES", b"ZPRD"}

CHUNK = struct.Struct("<4sQ")
CRC = struct.Struct("<I")
HEAD_FIXED = struct.Struct("<BBBB4Q4d4d16d2d5I2H")
INDEX_ENTRY = struct.Struct("<QI")
CODE_PREFIX = struct.Struct("<IHB")
RIDX_PREFIX = struct.Struct("<HI")
RESD_PREFIX = struct.Struct("<IBII")
XIDX_PREFIX = struct.Struct("<BddI")
XRES_PREFIX = struct.Struct("<IB")
TILE_PREFIX = struct.Struct("<HIHH")
ZPRD_PREFIX = struct.Struct("<HHI")
TRANSFORM_CDF97 = 1
GRID_FIELDS = struct.Struct("<HH")


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



PREAMBLE_SIZE = len(MAGIC) + 8
END_CHUNK = CHUNK.pack(b"END ", 0) + CRC.pack(zlib.crc32(CHUNK.pack(b"END ", 0)))


def preamble(major: int, minor: int) -> bytes:
    head = MAGIC + struct.pack("<HH", major, minor)
    return head + CRC.pack(zlib.crc32(head))


def frame_chunk(ctype: bytes, payload: bytes) -> bytes:
    head = CHUNK.pack(ctype, len(payload))
    return head + payload + CRC.pack(zlib.crc32(head + payload))


def layer_index_size(prefix: struct.Struct | None, n_slices: int) -> int:
    """Bytes of a RIDX or XIDX chunk with this prefix (None: no residual layer, 0)."""
    return 0 if prefix is None else CHUNK.size + prefix.size + INDEX_ENTRY.size * n_slices + CRC.size


def layer_prefix(bounded: bool, wavelet: bool) -> struct.Struct | None:
    return RIDX_PREFIX if bounded else XIDX_PREFIX if wavelet else None
