"""Inter-slice prediction for the residual layers: slice t of a volume coded as what a
prediction from the decoded slice t-1 missed (closed loop, so encoder and decoder predict
from the same pixels). The wavelet layer codes what the prediction missed; the
bounded-error layer takes the prediction as its base (lossless and ``--max-error`` volumes).

The predictor is per wavelet band: with W the CDF 9/7 transform of :mod:`.wavelet` and
``mid`` the base a slice without learned iterations has (the window's middle),

    prediction = mid + W^-1( w_b / WEIGHT_SCALE * W(decoded_{t-1} - mid)_b ),

rounded and clipped to the window in the pixel type. One weight per band (int8, least
squares of the slice's own bands on the reference's, chosen by the encoder): coarse bands of
thin slices are nearly equal (w ~ 1), fine bands of noise are not (w ~ 0), so thick-slice
volumes lose little. Per slice the encoder codes it both ways and keeps the smaller stream
(mode :data:`INTRA` or :data:`INTER`); every ``key_interval``-th slice is intra, so one
slice decodes from at most ``key_interval`` slices.

Chains (an intra slice and the inter slices after it) are independent: they are coded on
threads (:func:`.threads.map_slices`), the slices of a chain in order. Pure numpy plus the
compiled coders; the same integers everywhere. The file stores modes and weights in its
ZPRD chunk (``.mlc`` 1.4 for the wavelet layer, 1.5 for the bounded-error layer); measured
by ``benchmarks/interslice.py`` and ``benchmarks/interslice_lossless.py``.
"""

from __future__ import annotations

import dataclasses
from typing import Callable

import numpy as np

from .. import prep
from . import wavelet, wavelet_layer
from .threads import map_slices, thread_count

INTRA, INTER = 0, 1
DECODE_BLOCK = 8  # slices per thread decoded ahead of the chains (8 x 512² float64 = 16 MB)
WEIGHT_SCALE = 64  # weights are int8 / 64: -2 .. 1.98 in steps of 1/64


@dataclasses.dataclass(frozen=True)
class SliceRecord:
    """What a file stores for one slice: mode, per-band int8 weights (inter only; zeros for
    intra) and the residual layer's own record of the slice (wavelet layer: (decomposition
    levels, stream); bounded-error layer: its stream)."""

    mode: int
    weights: np.ndarray
    record: object


def _bands_flat(bands) -> list[np.ndarray]:
    return [bands[0]] + [b for level in bands[1:] for b in level]


def _bands_nested(flat: list[np.ndarray], levels: int) -> list:
    return [flat[0]] + [tuple(flat[1 + 3 * i:4 + 3 * i]) for i in range(levels)]


def band_count(shape: tuple[int, int]) -> int:
    """Wavelet bands of an (h, w) slice: one weight each."""
    return 1 + 3 * wavelet.levels_for(*shape)


def _bands_of(image: np.ndarray, mid: float) -> list[np.ndarray]:
    """The wavelet bands of image - mid (h, w), laid flat (LL first)."""
    return _bands_flat(wavelet.forward(image.astype(np.float64) - mid, wavelet.levels_for(*image.shape)))


def weights_for(target: np.ndarray, reference: np.ndarray, mid: float) -> np.ndarray:
    """Per-band int8 weights (in 1 / WEIGHT_SCALE) that best predict ``target``'s bands from
    ``reference``'s (least squares per band, rounded, clipped to int8), both (h, w)."""
    return _weights(_bands_of(target, mid), _bands_of(reference, mid))


def _weights(tb: list[np.ndarray], rb: list[np.ndarray]) -> np.ndarray:
    out = np.zeros(len(tb), np.int8)
    for i, (t, r) in enumerate(zip(tb, rb)):
        energy = float(np.sum(r * r))
        if energy > 0:
            out[i] = np.clip(np.rint(WEIGHT_SCALE * float(np.sum(t * r)) / energy), -128, 127)
    return out


def prediction(reference: np.ndarray, weights: np.ndarray, mid: float, window: tuple[float, float]) -> np.ndarray:
    """The inter base from the decoded previous slice ``reference`` (h, w), in its pixel type."""
    return _predicted(_bands_of(reference, mid), weights, mid, window, reference.dtype)


def _predicted(rb: list[np.ndarray], weights: np.ndarray, mid: float, window, dtype) -> np.ndarray:
    """:func:`prediction` from the reference's bands (:func:`_bands_of`)."""
    levels = (len(rb) - 1) // 3
    scaled = [b * (int(w) / WEIGHT_SCALE) for b, w in zip(rb, weights)]
    out = np.clip(wavelet.inverse(_bands_nested(scaled, levels)) + mid, window[0], window[1])
    if np.dtype(dtype).kind in "iu":
        out = np.rint(out)
    return out.astype(dtype)


def _coded(original: np.ndarray, base: np.ndarray, delta: float, window, rho: float) -> tuple[bytes, np.ndarray]:
    """(stream, final slice exactly as a decoder reconstructs it) of one slice over a base."""
    q, _ = wavelet_layer.quantized(original.astype(np.float64) - base, delta, rho)
    data = wavelet_layer.encode_bands(q, original.shape)
    return data, wavelet_layer.decode_slice(base, wavelet.levels_for(*original.shape), data, delta, window, rho)


def chains(n: int, key_interval: int) -> list[range]:
    """Slice ranges that start with a key slice: every ``key_interval``-th (0: one chain)."""
    step = n if key_interval <= 0 else key_interval
    return [range(s, min(s + step, n)) for s in range(0, max(n, 1), step)] if n else []


def encode_chains(originals: np.ndarray, bases: np.ndarray, code: Callable, window: tuple[float, float],
                  key_interval: int, threads: int | None = None, inter: bool = True) -> tuple[list[SliceRecord], np.ndarray]:
    """Code the slices (S, h, w) of one volume with any residual layer over their intra
    ``bases`` (S, h, w): ``code(original, base, state) -> (record, bytes, final, state)``
    codes one slice over a base, starting from ``state``: None for an intra slice, for an
    inter slice the state the slice before it returned (a layer's adaptive models; a layer
    without any returns None). Returns (records, final slices as decoded). ``inter=False``
    codes every slice intra (the reference the measurements compare with)."""
    shape = originals.shape[1:]
    nb = band_count(shape)
    mid = _mid(window, originals.dtype)
    finals = np.empty_like(originals)
    records: list = [None] * len(originals)
    zero = np.zeros(nb, np.int8)

    def chain(c: int) -> None:
        prev = state = None
        for t in groups[c]:
            layer_record, size, final, after = code(originals[t], bases[t], None)
            record = SliceRecord(INTRA, zero, layer_record)
            if inter and prev is not None:
                rb = _bands_of(prev, mid)  # the reference's transform, once for weights and prediction
                w = _weights(_bands_of(originals[t], mid), rb)
                layer_p, size_p, final_p, after_p = code(originals[t], _predicted(rb, w, mid, window, prev.dtype),
                                                         state)
                if size_p + nb < size:  # the weights cost a byte per band
                    record, final, after = SliceRecord(INTER, w, layer_p), final_p, after_p
            records[t], finals[t] = record, final
            prev, state = final, after

    groups = chains(len(originals), key_interval)
    map_slices(chain, len(groups), threads)
    return records, finals


def decode_chains(bases: np.ndarray, records: list[SliceRecord], decode: Callable, window: tuple[float, float],
                  threads: int | None = None) -> np.ndarray:
    """Inverse of :func:`encode_chains` with ``decode(base, record, state) -> (final,
    state)``: the final slices (S, h, w), in the bases' type. The first record must be
    intra; chains are decoded on threads."""
    if records and records[0].mode != INTRA:
        raise ValueError("the first slice of a volume must be intra")
    mid = _mid(window, bases.dtype)
    starts = [t for t, r in enumerate(records) if r.mode == INTRA] + [len(records)]
    out = np.empty(bases.shape, bases.dtype)

    def chain(c: int) -> None:
        prev = state = None
        for t in range(starts[c], starts[c + 1]):
            r = records[t]
            base = bases[t] if r.mode == INTRA else prediction(prev, r.weights, mid, window)
            prev, state = decode(base, r.record, None if r.mode == INTRA else state)
            out[t] = prev

    map_slices(chain, len(starts) - 1, threads)
    return out


def encode_volume(originals: np.ndarray, bases: np.ndarray, delta: float, window: tuple[float, float],
                  key_interval: int, rho: float = wavelet_layer.RHO, threads: int | None = None,
                  inter: bool = True) -> tuple[list[SliceRecord], np.ndarray]:
    """:func:`encode_chains` with the wavelet layer at step ``delta``: records hold
    (levels, stream)."""
    levels = wavelet.levels_for(*originals.shape[1:])

    def code(original, base, state):
        data, final = _coded(original, base, delta, window, rho)
        return (levels, data), len(data), final, None

    return encode_chains(originals, bases, code, window, key_interval, threads, inter)


def decode_volume(bases: np.ndarray, records: list[SliceRecord], delta: float, window: tuple[float, float],
                  rho: float = wavelet_layer.RHO, threads: int | None = None) -> np.ndarray:
    """Inverse of :func:`encode_volume`. A slice's stream does not depend on the slices
    before it (only its base does), so the streams are decoded on threads
    :data:`DECODE_BLOCK` slices per thread at a time, and the chains then put those slices
    together in order (prediction and :func:`wavelet_layer.finish`, the cheap part)."""
    if records and records[0].mode != INTRA:
        raise ValueError("the first slice of a volume must be intra")
    shape = bases.shape[1:]
    mid = _mid(window, bases.dtype)
    out = np.empty(bases.shape, bases.dtype)
    step = DECODE_BLOCK * thread_count(len(records), threads)
    prev = None
    for start in range(0, len(records), step):
        block = records[start:start + step]
        residuals = wavelet_layer.decoded_residuals([r.record[0] for r in block], [r.record[1] for r in block],
                                                    shape, delta, rho, threads)
        for t, (r, residual) in enumerate(zip(block, residuals), start):
            base = bases[t] if r.mode == INTRA else prediction(prev, r.weights, mid, window)
            out[t] = prev = wavelet_layer.finish(base, residual, window)
    return out


def _mid(window: tuple[float, float], dtype) -> float:
    """The base of a slice without learned iterations: the window's middle in the pixel
    type (what :func:`medcodec.prep.denormalise` makes of a zero network output)."""
    return float(prep.denormalise(np.zeros(1, np.float32), window, np.dtype(dtype).name)[0])
