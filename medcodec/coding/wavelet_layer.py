"""The wavelet layer: the learned base plus a context-coded wavelet residual, for
rate and quality targets (``--bpp``, ``--psnr``) at a transform coder's rate.

The bounded-error layer (:mod:`medcodec.coding.bounded_error`) is predictive, like JPEG-LS: excellent
near lossless, but at 40-50 dB it spends far more bits than a transform coder. This layer
codes each slice's residual r = x - base in the CDF 9/7 wavelet domain
(:mod:`medcodec.coding.wavelet`):

- quantization: band b (synthesis norm n_b) with step delta / n_b and a dead zone,
  q = sign(c) floor(|c| n_b / delta + TAU); reconstruction sign(q) (|q| + rho) delta / n_b;
  one delta per file (equal slope for mean squared error), rho stored in the file;
- coding order: LL, then per level from coarse to fine LH, HL, HH; inside a band
  hierarchical passes (every 4th row and column, then the centres and edge midpoints of the
  4-grid, then of the 2-grid), so most coefficients see decoded neighbours on all sides;
- q is binarized like the bounded-error layer (flag q != 0, unary bit length, sign, low
  bits) and range coded (:mod:`medcodec.coding.rangecoder`) with adaptive integer counts, updated after
  chunks of 16, 32, ... 4096 coefficients. Contexts: q != 0 from (band group, seed pass or
  not, how many of each neighbour pair along / across the band's edges are nonzero, parent
  and sibling significance, activity class); the length flags from (band group, pass kind,
  activity class, j); the sign from the neighbour pairs' signs; the bit below the leading
  one from (activity class, length); the other low bits at p = 1/2. Activity combines the
  decoded neighbours in the band, the parent (same orientation, next coarser level) and
  the siblings (the other orientations at the same place, coded before it).
- the encoder alone decides a dead zone TAU and drops isolated +-1 coefficients (no
  nonzero neighbour or parent) below 1 - TAU_ISOLATED steps: they cost more bits than the
  error they remove.

Contexts depend only on decoded integers, so the stream decodes identically on every
machine; the float base and transform only move the reconstruction (by far less than a grey
level between CPU and GPU). There is no error bound: the encoder measures the PSNR.

The band walk is compiled (:mod:`medcodec.coding.kernels.wavelet_layer`); slices run on
threads.
"""

from __future__ import annotations

import numpy as np

from . import wavelet
from .rangecoder import check_decoded, decoder_of, payload
from .threads import map_slices
from ..errors import ContainerError

TAU = 0.30  # quantizer rounding offset (< 0.5: a dead zone around 0); tuned on training images
TAU_ISOLATED = 0.10  # rounding offset for an isolated coefficient (see quantize)
RHO = 0.15  # reconstruction offset inside a bin (coefficients sit low in their bins)
_MAX_Q = 2 ** 46  # |q| clip: bit lengths stay below the coder's 48


def _spread(mag: np.ndarray, h: int, w: int, scale: int) -> np.ndarray:
    """|values| of a band of another size read at (y // scale, x // scale), clipped:
    (..., h, w) from (..., h', w')."""
    ys = np.minimum(np.arange(h) // scale, mag.shape[-2] - 1)
    xs = np.minimum(np.arange(w) // scale, mag.shape[-1] - 1)
    return mag[..., ys[:, None], xs[None, :]]


def quantize(bands, delta: float, levels: int):
    """Wavelet bands -> integer bands (same layout). Dead zone TAU everywhere; an isolated
    coefficient (no nonzero neighbour in its 3x3 block, zero parent) costs several bits
    to signal, so it is kept only from 1 - TAU_ISOLATED steps (rate-distortion choice made by
    the encoder alone: the decoder does not need to know). Compiled
    (:func:`medcodec.coding.kernels.wavelet_layer.quantize`), equal to :func:`quantize_numpy`."""
    from .kernels.wavelet_layer import quantize as kernel

    flat, offsets, shapes = _flat(bands, np.float64)
    q = kernel(flat, offsets, shapes, _band_norms(levels) / delta, TAU, 1 - TAU_ISOLATED, _MAX_Q)
    return _bands_of(q, offsets, shapes, levels)


def quantize_numpy(bands, delta: float, levels: int):
    """:func:`quantize` in numpy: the definition the kernel follows."""
    norms = wavelet.synthesis_norms(levels)

    def q(c, n):  # clipped far beyond any real image, so bit lengths stay below _MAX_LEN
        return np.clip(np.sign(c) * np.floor(np.abs(c) * (n / delta) + TAU), -_MAX_Q, _MAX_Q).astype(np.int64)

    out = [q(bands[0], norms[0])]
    for lev in range(1, levels + 1):
        level = []
        for o, (c, n) in enumerate(zip(bands[lev], norms[lev])):
            qb = q(c, n)
            nz = np.pad(qb != 0, 1).astype(np.int8)
            h, w = qb.shape
            around = sum(nz[dy:dy + h, dx:dx + w] for dy in range(3) for dx in range(3)) - nz[1:-1, 1:-1]
            if lev > 1:
                around = around + (_spread(np.abs(out[lev - 1][o]), h, w, 2) > 0)
            weak = (around == 0) & (np.abs(qb) == 1) & (np.abs(c) * (n / delta) < 1 - TAU_ISOLATED)
            qb[weak] = 0
            level.append(qb)
        out.append(tuple(level))
    return out


def _flat(bands, dtype) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(values laid end to end, offsets (bands + 1,), shapes (bands, 2)) of bands in the
    layout of :func:`wavelet.forward`."""
    each = [np.asarray(bands[0], dtype)] + [np.asarray(b, dtype) for level in bands[1:] for b in level]
    shapes = np.array([b.shape for b in each], np.int64).reshape(-1, 2)
    return np.concatenate([b.ravel() for b in each]), _offsets(shapes), shapes


def _offsets(shapes: np.ndarray) -> np.ndarray:
    """Where each band of ``shapes`` (bands, 2) starts when laid end to end, and the end."""
    return np.concatenate([[0], np.cumsum(shapes[:, 0] * shapes[:, 1])]).astype(np.int64)


def _band_norms(levels: int) -> np.ndarray:
    """:func:`wavelet.synthesis_norms` laid flat, LL first: the quantizer's scale is
    norm / delta, the dequantizer's step delta / norm (elementwise, the same floats as one
    band at a time)."""
    norms = wavelet.synthesis_norms(levels)
    return np.array([norms[0]] + [n for level in norms[1:] for n in level], np.float64)


def _band_steps(delta: float, levels: int) -> np.ndarray:
    """delta / norm of each band, LL first (the dequantizer's step per band)."""
    return delta / _band_norms(levels)


def dequantize(q_bands, delta: float, levels: int, rho: float = RHO):
    """Integer bands -> wavelet bands. Compiled (the decoder's
    :func:`medcodec.coding.kernels.wavelet_layer.dequantize`), equal to :func:`dequantize_numpy`."""
    from .kernels.wavelet_layer import dequantize as kernel

    flat, offsets, shapes = _flat(q_bands, np.int64)
    return _bands_of(kernel(flat, offsets, _band_steps(delta, levels), float(rho)), offsets, shapes, levels)


def dequantize_numpy(q_bands, delta: float, levels: int, rho: float = RHO):
    """:func:`dequantize` in numpy: the definition the kernel follows."""
    norms = wavelet.synthesis_norms(levels)

    def d(q, n):
        return np.sign(q) * (np.abs(q) + rho) * (delta / n)

    return [d(q_bands[0], norms[0])] + [tuple(d(c, n) for c, n in zip(t, nt)) for t, nt in zip(q_bands[1:], norms[1:])]


def _levels(shape: tuple[int, int]) -> int:
    return wavelet.levels_for(*shape)


def quantized(residual: np.ndarray, delta: float, rho: float = RHO) -> tuple[list, np.ndarray]:
    """Quantize one slice's residual (h, w): (integer bands, the residual they decode to,
    float64). What the stream holds and what a decoder reconstructs, without coding it."""
    levels = _levels(residual.shape)
    q = quantize(wavelet.forward(residual, levels), delta, levels)
    return q, wavelet.inverse(dequantize(q, delta, levels, rho))


def finish(base: np.ndarray, decoded_residual: np.ndarray, window: tuple[float, float]) -> np.ndarray:
    """The final slice: base + residual, clipped to the window, rounded for integer types,
    in the base's pixel type; base and residual (h, w). Compiled, equal to
    :func:`finish_numpy`."""
    from .kernels.wavelet_layer import finish as kernel

    out = np.empty(base.shape, base.dtype)
    kernel(base, np.asarray(decoded_residual, np.float64), float(window[0]), float(window[1]), base.dtype.kind in "iu",
           out)
    return out


def finish_numpy(base: np.ndarray, decoded_residual: np.ndarray, window: tuple[float, float]) -> np.ndarray:
    """:func:`finish` in numpy: the definition the kernel follows."""
    out = np.clip(base.astype(np.float64) + decoded_residual, window[0], window[1])
    if base.dtype.kind in "iu":
        out = np.rint(out)
    return out.astype(base.dtype)


def encode_slice(original: np.ndarray, base: np.ndarray, delta: float, window: tuple[float, float],
                 rho: float = RHO) -> tuple[int, bytes, np.ndarray]:
    """One slice's layer: (levels, payload, final slice as a decoder reconstructs it)."""
    return encode_slices(original[None], base[None], delta, window, rho)[0]


def encode_slices(originals: np.ndarray, bases: np.ndarray, delta: float, window: tuple[float, float],
                  rho: float = RHO, threads: int | None = None) -> list[tuple[int, bytes, np.ndarray]]:
    """:func:`encode_slice` of several slices of one shape ((S, h, w) each), on up to
    ``threads`` threads."""
    shape = originals.shape[1:]

    def one(i: int) -> tuple[int, bytes, np.ndarray]:
        q, residual = quantized(originals[i].astype(np.float64) - bases[i], delta, rho)
        return _levels(shape), encode_bands(q, shape), finish(bases[i], residual, window)

    return map_slices(one, len(originals), threads)


def _layout(shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray, int]:
    """(offsets (bands + 1,), shapes (bands, 2), levels) of a slice's bands laid end to end
    in the order of :func:`wavelet.forward` (LL, then per level LH, HL, HH)."""
    levels = _levels(shape)
    per_band = wavelet.band_shapes(*shape, levels)
    shapes = np.array([per_band[0]] + [s for level in per_band[1:] for s in level], np.int64).reshape(-1, 2)
    return _offsets(shapes), shapes, levels


def encode_bands(q_bands, shape: tuple[int, int]) -> bytes:
    """Range-code one slice's integer bands (layout of :func:`quantize`): the payload."""
    from .kernels import wavelet_layer as kernel
    from .kernels.rangecoder import finish as seal, new_encoder

    offsets, shapes, levels = _layout(shape)
    flat = _flat(q_bands, np.int64)[0]
    if flat.size != offsets[-1]:
        raise ValueError(f"bands do not fit a {shape[0]}x{shape[1]} slice")
    return payload(seal(kernel.walk(flat, offsets, shapes, levels, True, new_encoder(flat.size // 16))))


def encode_bands_many(q_bands_list: list, shape: tuple[int, int], threads: int | None = None) -> list[bytes]:
    """:func:`encode_bands` of several slices of one shape, on up to ``threads`` threads."""
    return map_slices(lambda i: encode_bands(q_bands_list[i], shape), len(q_bands_list), threads)


def decode_slice(base: np.ndarray, levels: int, data: bytes, delta: float, window: tuple[float, float],
                 rho: float = RHO) -> np.ndarray:
    """Inverse of :func:`encode_slice`: the final slice, in the base's pixel type."""
    return decode_slices(base[None], levels, [data], delta, window, rho)[0]


def decode_slices(bases: np.ndarray, levels, datas: list[bytes], delta: float, window: tuple[float, float],
                  rho: float = RHO, threads: int | None = None) -> np.ndarray:
    """:func:`decode_slice` of several slices of one shape (bases (S, h, w)), on up to
    ``threads`` threads;
    ``levels``: the stored level count, one for all or one per slice."""
    shape = bases.shape[1:]
    _check_levels(levels, shape)
    out = np.empty(bases.shape, bases.dtype)

    def one(i: int) -> None:
        out[i] = finish(bases[i], _decoded_residual(datas[i], shape, delta, rho), window)

    map_slices(one, len(bases), threads)
    return out


def decoded_residuals(levels, datas: list[bytes], shape: tuple[int, int], delta: float, rho: float = RHO,
                      threads: int | None = None) -> np.ndarray:
    """The residuals (S, h, w) float64 the streams of S (h, w) slices decode to, before any
    base is added (:func:`finish` adds it), on up to ``threads`` threads; ``levels`` as in
    :func:`decode_slices`."""
    _check_levels(levels, shape)
    out = np.empty((len(datas),) + tuple(shape), np.float64)

    def one(i: int) -> None:
        out[i] = _decoded_residual(datas[i], shape, delta, rho)

    map_slices(one, len(datas), threads)
    return out


def _check_levels(levels, shape: tuple[int, int]) -> None:
    expected = _levels(shape)
    for stored in set(np.atleast_1d(levels).tolist()):
        if stored != expected:
            raise ContainerError(f"wavelet layer has {stored} levels; a {shape[0]}x{shape[1]} "
                                 f"slice has {expected}")


def _decoded_flat(data: bytes, shape: tuple[int, int]):
    """(integer bands laid end to end, offsets, shapes, levels) of one stream."""
    from .kernels import wavelet_layer as kernel

    what = "wavelet layer chunk"
    offsets, shapes, levels = _layout(shape)
    flat = np.zeros(offsets[-1], np.int64)
    check_decoded(kernel.walk(flat, offsets, shapes, levels, False, decoder_of(data, what)), what)
    return flat, offsets, shapes, levels


def _bands_of(flat: np.ndarray, offsets: np.ndarray, shapes: np.ndarray, levels: int) -> list:
    """The layout of :func:`quantize` as views of bands laid end to end."""
    bands = [flat[offsets[b]:offsets[b + 1]].reshape(shapes[b]) for b in range(len(shapes))]
    return [bands[0]] + [tuple(bands[1 + 3 * lev:4 + 3 * lev]) for lev in range(levels)]


def decode_bands(data: bytes, shape: tuple[int, int]) -> list:
    """Inverse of :func:`encode_bands`: the integer bands of an (h, w) slice. Raises
    ContainerError for a stream that does not decode."""
    return _bands_of(*_decoded_flat(data, shape))


def _decoded_residual(data: bytes, shape: tuple[int, int], delta: float, rho: float) -> np.ndarray:
    """The residual one stream decodes to: :func:`decode_bands`, :func:`dequantize` (compiled,
    the same floats) and the inverse wavelet, float64 (h, w)."""
    from .kernels.wavelet_layer import dequantize as dequantize_flat

    flat, offsets, shapes, levels = _decoded_flat(data, shape)
    steps = _band_steps(delta, levels)
    return wavelet.inverse(_bands_of(dequantize_flat(flat, offsets, steps, float(rho)), offsets, shapes, levels))


def decode_bands_many(datas: list[bytes], shape: tuple[int, int], threads: int | None = None) -> list[list]:
    """:func:`decode_bands` of several streams of slices of one shape, on up to ``threads`` threads."""
    return map_slices(lambda i: decode_bands(datas[i], shape), len(datas), threads)
