"""Numpy-side preparation: intensity window, slicing, padding to the network's stride and
to a few shape buckets, and quality metrics.

Shapes: a volume is (Z, Y, X) (numpy order of a SimpleITK 3D image), a 2D image (Y, X),
a 4D series (T, Z, Y, X); the codec codes 2D slices (S, Y, X) with S = product of the
leading axes.
"""

from __future__ import annotations

import math

import numpy as np

from .errors import InputError, UnsupportedPixelTypeError

SUPPORTED_DTYPES = ("uint8", "int8", "uint16", "int16", "uint32", "int32", "float32", "float64")


def check_array(array: np.ndarray) -> np.ndarray:
    """Validate an input image; returns it as a numpy array."""
    array = np.asarray(array)
    if array.dtype.name not in SUPPORTED_DTYPES:
        raise UnsupportedPixelTypeError(
            f"pixel type {array.dtype} is not supported; use one of {', '.join(SUPPORTED_DTYPES)} "
            "(vector/RGB images must be split into scalar channels first)")
    if not 2 <= array.ndim <= 4:
        raise InputError(f"expected a 2D, 3D or 4D grayscale image, got {array.ndim} dimensions")
    if array.size == 0:
        raise InputError("image is empty")
    if array.dtype.kind == "f" and not np.all(np.isfinite(array)):
        raise InputError("image contains NaN or Inf values; replace them (e.g. numpy.nan_to_num) before encoding")
    return array


def window_of(array: np.ndarray) -> tuple[float, float]:
    """The intensity window [min, max] of a volume, stored in the file."""
    return float(array.min()), float(array.max())


def normalise(array: np.ndarray, window: tuple[float, float]) -> np.ndarray:
    """Map window to [-0.5, 0.5] as float32 (a constant image maps to -0.5)."""
    lo, hi = window
    scale = 1.0 / (hi - lo) if hi > lo else 0.0
    return ((array.astype(np.float64) - lo) * scale - 0.5).astype(np.float32)


def denormalise(x: np.ndarray, window: tuple[float, float], dtype: str) -> np.ndarray:
    """Inverse of :func:`normalise`, clipped to the window, rounded for integer types."""
    lo, hi = window
    out = np.clip((x.astype(np.float64) + 0.5) * (hi - lo) + lo, lo, hi)
    if np.dtype(dtype).kind in "iu":
        out = np.rint(out)
    return out.astype(dtype)


def coded_size(n: int, factor: int) -> int:
    """Network input size along one axis: a multiple of ``factor``, rounded up to a bucket
    (multiples of 32 up to 256, of 64 above) so that few shapes get compiled."""
    n = max(n, 1)
    step = 32 if n <= 256 else 64
    step = max(step, factor) if step % factor == 0 else factor
    return math.ceil(n / step) * step


def code_grid(n: int, factor: int) -> int:
    """Code positions stored along one axis for ``n`` pixels."""
    return math.ceil(max(n, 1) / factor)


def pad_slices(slices: np.ndarray, height: int, width: int) -> np.ndarray:
    """(S, Y, X) -> (S, height, width) by edge replication."""
    s, y, x = slices.shape
    return np.pad(slices, ((0, 0), (0, height - y), (0, width - x)), mode="edge")


def block_sums(a: np.ndarray, block: int) -> np.ndarray:
    """Sums over block x block squares of the last two axes, (..., H, W) -> (..., ceil(H/b),
    ceil(W/b)); partial squares at the edges sum what they hold. Code cells (block = the
    model's stride) and tiles (block = cells per tile) both use it."""
    *lead, h, w = a.shape
    gh, gw = -(-h // block), -(-w // block)
    padded = np.zeros((*lead, gh * block, gw * block), np.float64)
    padded[..., :h, :w] = a
    return padded.reshape(*lead, gh, block, gw, block).sum(axis=(-3, -1))


def batch_size_for(height: int, width: int, budget_pixels: int = 4 * 512 * 512) -> int:
    """Slices per compiled batch: a power of two keeping a batch near ``budget_pixels``."""
    n = max(1, budget_pixels // (height * width))
    return 1 << (n.bit_length() - 1)


def psnr(reference: np.ndarray, test: np.ndarray, peak: float | None = None,
         inside: np.ndarray | None = None) -> float:
    """PSNR in dB with peak = the reference's max - min (its own dynamic range) by default.
    ``inside`` (bool, the images' shape): the error is measured inside that region only,
    the peak still over the whole reference (as the benchmarks do)."""
    if inside is not None:
        if peak is None:
            peak = float(reference.max()) - float(reference.min())
        reference, test = reference[inside], test[inside]
    ref = reference.astype(np.float64)
    mse = float(np.mean((ref - test.astype(np.float64)) ** 2))
    if peak is None:
        peak = float(ref.max() - ref.min())
    if mse == 0:
        return math.inf
    if peak <= 0:
        return -math.inf
    return 10 * math.log10(peak * peak / mse)


def max_abs_error(reference: np.ndarray, test: np.ndarray) -> float:
    return float(np.max(np.abs(reference.astype(np.float64) - test.astype(np.float64))))


# Slices larger than this on a side are coded in pieces (``.mlc`` GRID chunk): the network's
# memory grows with the pixels it sees at once (measured ~0.6 GiB per megapixel to encode on
# CPU), so a 2048x2048 piece stays near 2.7 GiB. MEDCODEC_MAX_PIECE_SIDE overrides.
MAX_PIECE_SIDE_DEFAULT = 2048


def max_piece_side() -> int:
    import os

    try:
        return max(16, int(os.environ.get("MEDCODEC_MAX_PIECE_SIDE", MAX_PIECE_SIDE_DEFAULT)))
    except ValueError:
        return MAX_PIECE_SIDE_DEFAULT


def piece_grid(height: int, width: int, factor: int) -> tuple[int, int, int, int] | None:
    """(pieces_y, pieces_x, piece height, piece width) for a slice too large to code whole,
    else None. Pieces are as even as the model's stride allows."""
    side = max_piece_side()
    if height <= side and width <= side:
        return None
    ty, tx = math.ceil(height / side), math.ceil(width / side)
    ph = math.ceil(math.ceil(height / ty) / factor) * factor
    pw = math.ceil(math.ceil(width / tx) / factor) * factor
    # rounding up to the stride may leave a last row/column of pieces empty: drop it
    return math.ceil(height / ph), math.ceil(width / pw), ph, pw


def to_pieces(slices: np.ndarray, ty: int, tx: int, ph: int, pw: int) -> np.ndarray:
    """(S, H, W) -> (S*ty*tx, ph, pw) pieces in (slice, row, column) order; the last row and
    column extend past the image by edge replication."""
    s = slices.shape[0]
    padded = pad_slices(slices, ty * ph, tx * pw)
    return padded.reshape(s, ty, ph, tx, pw).transpose(0, 1, 3, 2, 4).reshape(s * ty * tx, ph, pw)


def from_pieces(pieces: np.ndarray, ty: int, tx: int, height: int, width: int) -> np.ndarray:
    """Inverse of :func:`to_pieces`: (S*ty*tx, ph, pw) -> (S, height, width), cropped."""
    n, ph, pw = pieces.shape
    s = n // (ty * tx)
    whole = pieces.reshape(s, ty, tx, ph, pw).transpose(0, 1, 3, 2, 4).reshape(s, ty * ph, tx * pw)
    return whole[:, :height, :width]
