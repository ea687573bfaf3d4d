"""The HEAD and META chunks: :class:`Header`, its byte layout, and its small named checks."""

from __future__ import annotations

import dataclasses
import math
import struct
from typing import Iterable

import numpy as np

from ..errors import ContainerError
from .spec import HEAD_FIXED, PIXEL_CODES, PIXEL_TYPES, VERSION, max_slice_pixels, max_voxels


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


def encode_header(h: Header) -> bytes:
    if not 2 <= h.ndim <= 4:
        raise ContainerError(f"ndim must be 2..4, got {h.ndim}")
    direction = np.eye(4)
    direction[: h.ndim, : h.ndim] = np.asarray(h.direction, dtype=np.float64).reshape(h.ndim, h.ndim)
    mid = h.model_id.encode("utf-8")
    fixed = HEAD_FIXED.pack(
        h.ndim, PIXEL_CODES[h.pixel_type], h.components, 0,
        *_pad4(h.size, 1), *_pad4(h.spacing, 1.0), *_pad4(h.origin, 0.0), *direction.ravel(),
        float(h.window[0]), float(h.window[1]),
        h.slices, h.height, h.width, h.coded_height, h.coded_width, h.iterations, h.bits,
    )
    return fixed + struct.pack("<H", len(mid)) + mid


def decode_header(payload: bytes) -> Header:
    n = HEAD_FIXED.size
    if len(payload) < n + 2:
        raise ContainerError("HEAD chunk too short")
    v = HEAD_FIXED.unpack_from(payload)
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


def _chk_components(h: Header) -> str | None:
    if h.components != 1:
        return f"{h.components} components per pixel (v1 codes scalar images only)"


def _chk_size(h: Header) -> str | None:
    if any(s < 1 for s in h.size):
        return f"size {h.size}"


def _chk_pieces(h: Header) -> str | None:
    """Slice fields against the size; with a GRID every row/column of pieces must hold
    image pixels (no piece lies wholly outside the image)."""
    ty, tx = h.grid or (1, 1)
    if ty < 1 or tx < 1:
        return f"grid of {ty}x{tx} pieces"
    if not ((ty - 1) * h.height < h.size[1] <= ty * h.height and (tx - 1) * h.width < h.size[0] <= tx * h.width):
        return f"size {h.size} vs slice {h.width}x{h.height}" + (f" in {ty}x{tx} pieces" if h.grid else "")
    if h.grid is None and (h.size[0], h.size[1]) != (h.width, h.height):
        return f"size {h.size} vs slice {h.width}x{h.height}"
    if h.image_slices * ty * tx != h.slices:
        return f"size {h.size} vs {h.slices} slices"


def _chk_coded_size(h: Header) -> str | None:
    if not (h.height <= h.coded_height <= 2 * h.height + 64 and h.width <= h.coded_width <= 2 * h.width + 64):
        return f"coded size {h.coded_height}x{h.coded_width} for a {h.height}x{h.width} slice"


def _chk_codes(h: Header) -> str | None:
    if h.iterations < 1 or h.bits < 1:
        return f"{h.iterations} iterations, {h.bits} bits"


def _chk_window(h: Header) -> str | None:
    lo, hi = h.window
    if not (math.isfinite(lo) and math.isfinite(hi) and lo <= hi):
        return f"intensity window {h.window}"


def _chk_geometry(h: Header) -> str | None:
    if not all(math.isfinite(v) for v in (*h.spacing, *h.origin, *h.direction)) or min(h.spacing) <= 0:
        return "non-finite or non-positive geometry"


def _chk_limits(h: Header) -> None:
    """Decompression-bomb limits: raised with their own message (what to raise if the file
    is trusted), not as an inconsistency."""
    voxels = math.prod(h.size)
    if voxels > max_voxels():
        raise ContainerError(f"image of {voxels} voxels exceeds the limit of {max_voxels()} "
                             "(raise MEDCODEC_MAX_VOXELS if the file is trusted)")
    if h.height * h.width > max_slice_pixels():
        raise ContainerError(f"a {h.width}x{h.height} slice exceeds the limit of {max_slice_pixels()} pixels "
                             "per slice coded in one piece (raise MEDCODEC_MAX_SLICE_PIXELS if memory allows)")


# Small named checks of a header, in order; each returns what is wrong, or None.
HEADER_CHECKS = (_chk_components, _chk_size, _chk_pieces, _chk_limits, _chk_coded_size, _chk_codes,
                 _chk_window, _chk_geometry)


def validate_header(h: Header) -> None:
    """Check that the header's fields (and the GRID pieces) agree with each other and are
    sane, before any allocation. Raises ContainerError naming the first problem."""
    for check in HEADER_CHECKS:
        if (problem := check(h)) is not None:
            raise ContainerError(f"HEAD chunk is inconsistent: {problem}")


def encode_meta(meta: dict[str, str]) -> bytes:
    out = [struct.pack("<I", len(meta))]
    for k, val in meta.items():
        kb, vb = str(k).encode("utf-8", "replace"), str(val).encode("utf-8", "replace")
        out += [struct.pack("<I", len(kb)), kb, struct.pack("<I", len(vb)), vb]
    return b"".join(out)


def decode_meta(payload: bytes) -> dict[str, str]:
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

