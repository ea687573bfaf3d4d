"""Rate control over the wavelet layer: which learned base, which quantizer step.

A candidate of :func:`medcodec.ratecontrol.encode_to_target`. For each base of k learned
iterations (k in :data:`BASES`; k = 0 is a file whose tiles all have count 0, so the base is
the middle of the window and the network adds nothing), the wavelet layer
(:mod:`medcodec.coding.wavelet_layer`) gets the step that meets the target:

- a PSNR (inside a region, if given): the largest step whose reconstruction reaches it,
  found by bisection on the measured PSNR (transform once, then quantize and invert per
  trial: no entropy coding needed);
- a rate: the smallest step whose coded size fits, by bisection on the coded bytes.

The base whose file is smallest (PSNR) or whose quality is best (rate) wins; it is encoded
for real and measured, and the step is corrected until the real file meets the target
(slices coded in pieces make the whole-slice trials an estimate, and the rate of a volume
is estimated from a sample of its slices). The wavelet bands of every slice are kept in
memory while searching (8 bytes per voxel).
"""

from __future__ import annotations

import copy
import math

import numpy as np

from .. import prep
from ..coding import wavelet, wavelet_layer
from ..coding.threads import map_slices
from ..format import payload_sizes, prefix_sizes, read_header
from ..pipeline import decode, encode
from ..pipeline.stats import EncodeStats

BASES = (0, 1, 2, 4)  # learned iterations tried under the wavelet layer
XRES_OVERHEAD_BYTES = 16 + 5 + 12  # XRES chunk header/CRC, its prefix, its XIDX entry
TILE_BYTES = 64  # k = 0: the TILE chunk of all-zero counts, estimated (the real encodes correct it)
RATE_SAMPLE_SLICES = 12
_PSNR_STEPS = 10  # bisection steps after bracketing within a factor 4: step within 0.2 %
_RATE_STEPS = 7  # each costs a full entropy coding: step within 1.1 %
_FINAL_TRIES = 6  # real encodes to meet a PSNR target
_RATE_TRIES = 8  # real encodes to land within the rate window
_SLACK_DB = 0.03  # a PSNR-target file this far above its target gets one coarser try (inter-slice)


class _Slices:
    """One base's residuals in the wavelet domain, re-quantized cheaply for each trial step."""

    def __init__(self, originals: np.ndarray, base: np.ndarray, window, inside: np.ndarray):
        self.originals, self.base, self.window, self.inside = originals, base, window, inside
        self.levels = wavelet.levels_for(*originals.shape[1:])
        self.bands = [wavelet.forward(o.astype(np.float64) - b, self.levels) for o, b in zip(originals, base)]

    def sse(self, delta: float) -> float:
        """Squared error of the layer at this step, inside the region; slices on threads
        (numpy releases the GIL), summed in slice order (the same total on any count)."""
        def one(i):
            q = wavelet_layer.quantize(self.bands[i], delta, self.levels)
            final = wavelet_layer.finish(self.base[i], wavelet.inverse(wavelet_layer.dequantize(q, delta, self.levels)),
                                         self.window)
            return float(np.sum(np.square(final.astype(np.float64) - self.originals[i])[self.inside[i]]))

        return sum(map_slices(one, len(self.bands)), 0.0)

    def coded_bytes(self, delta: float) -> float:
        """Bytes of the layer at this step; for volumes estimated from every n-th slice
        (about :data:`RATE_SAMPLE_SLICES` coded, on threads; the real file is measured
        afterwards)."""
        shape = self.originals.shape[1:]
        n = len(self.bands)
        picked = range(0, n, max(1, n // RATE_SAMPLE_SLICES))
        q = [wavelet_layer.quantize(self.bands[i], delta, self.levels) for i in picked]
        streams = wavelet_layer.encode_bands_many(q, shape)
        return sum(map(len, streams)) * n / len(picked) + XRES_OVERHEAD_BYTES * n


def _bisect(ok, start: float, steps: int, upper: float) -> float:
    """The largest x <= ``upper`` for which ``ok(x)`` holds (ok is monotone: true for small
    x), in log steps from ``start``; a tiny x if none holds."""
    lo, hi = start, start
    while not ok(lo) and lo > 1e-9:
        hi, lo = lo, lo / 4
    while ok(hi):
        if hi >= upper:
            return upper
        lo, hi = hi, min(hi * 4, upper)
    for _ in range(steps):
        mid = math.sqrt(lo * hi)
        lo, hi = (mid, hi) if ok(mid) else (lo, mid)
    return lo


class Bases:
    """The bases under a residual layer: the k-iteration prefixes of the full encode at
    ``full_path`` as the layers see them (k = 0: the window's middle), each decoded once and
    shared by the wavelet and bounded-error candidates (decoding is most of their work), the
    bytes of their files, and the wavelet layer's trial scores over them (one array and
    region per instance). ``learned=False``: ``full_path`` is a base-only file
    (:func:`medcodec.pipeline.encode.compress` with ``base_only``) and only k = 0 is tried."""

    def __init__(self, full_path, learned: bool = True):
        self.full_path, self.header, self._decoded, self.scored = full_path, read_header(full_path), {}, {}
        self.base_only = not learned
        self.sizes = prefix_sizes(full_path)  # bytes of the file truncated to 1, 2, ... iterations
        self.most = 0 if self.base_only else len(self.sizes)  # the most learned iterations tried
        self._codes0 = int(payload_sizes(full_path)[:, 0].sum())  # its first iteration's code payloads

    def without_network(self) -> "Bases":
        """These bases with only k = 0 tried, sharing what was decoded and scored."""
        other = copy.copy(self)
        other.most = 0
        return other

    def tried(self, ks) -> list:
        """The counts of ``ks`` tried: those the full encode has prefixes for, up to :attr:`most`."""
        return [k for k in ks if k <= self.most]

    def file_bytes(self, k: int, tile_bytes: int) -> int:
        """Bytes of the base's file before the layer: the k-iteration prefix; k = 0: the
        one-iteration file without its code payloads, plus ``tile_bytes`` for its TILE chunk
        (a base-only file has its real one)."""
        if k:
            return self.sizes[k - 1]
        return self.sizes[0] - self._codes0 + (0 if self.base_only else tile_bytes)

    def __call__(self, k: int, shape) -> np.ndarray:
        if k not in self._decoded:
            self._decoded[k] = self._decode(k, shape)
        return self._decoded[k]

    def _decode(self, k: int, shape) -> np.ndarray:
        h = self.header
        if k == 0:
            return np.broadcast_to(prep.denormalise(np.zeros(1, np.float32), h.window, h.pixel_type), shape)
        return decode.decompress(self.full_path, iterations=k, precision="float32")[0].reshape(shape)


def _fit_rate(encode, step: float, bpp: float, tolerance: float):
    """Encode at ``step``, then correct the step until the real file lands within
    ``tolerance`` below ``bpp``: a first correction assuming rate ~ 1 / step, then
    bisection (in log step) between a step that overshoots and one that fits (the rate is
    not quite monotone at low rates, so bracketing is safer than extrapolation). Returns the
    stats of the file on disk: in the window, else the largest that fits (re-encoded last),
    else None."""
    over = under = None  # the largest step overshooting, the smallest step fitting
    fit = None  # (bpp, step) of the largest file within the budget
    for _ in range(_RATE_TRIES):
        stats = encode(step)
        if stats.bpp <= bpp:
            if bpp * (1 - tolerance) <= stats.bpp:
                return stats
            if fit is None or stats.bpp > fit[0]:
                fit = (stats.bpp, step)
            under = step if under is None else min(under, step)
        else:
            over = step if over is None else max(over, step)
        if over is not None and under is not None:
            step = math.sqrt(over * under)
        else:  # no bracket yet: rate ~ 1 / step, within a factor 2
            step *= max(0.5, min(2.0, stats.bpp / (bpp * (1 - tolerance / 2))))
    if fit is None:
        return None
    return encode(fit[1])


def _step_for_base(trial: _Slices, base_bytes: float, array, peak: float, psnr, bpp):
    """(score, step) of one base: for a PSNR the largest step reaching it, scored by bytes;
    for a rate the smallest step that fits, scored by squared error. None if none fits."""
    start = max(peak, 1e-6) / 10 ** ((psnr or 40.0) / 20) * 3.0
    coarsest = 256 * max(peak, 1e-6)  # every coefficient quantizes to 0 beyond this step
    if psnr is not None:
        allowed = int(trial.inside.sum()) * (peak / 10 ** (psnr / 20)) ** 2
        step = _bisect(lambda d: trial.sse(d) <= allowed, start, _PSNR_STEPS, coarsest)
        return base_bytes + trial.coded_bytes(step), step
    budget = bpp * array.size / 8.0 - base_bytes
    if budget <= 0:
        return None
    # coded bytes fall as the step grows: the smallest step that fits
    step = 1.0 / _bisect(lambda inv: trial.coded_bytes(1.0 / inv) <= budget, 1.0 / start, _RATE_STEPS, 1e12)
    if trial.coded_bytes(step) > budget:
        return None
    return trial.sse(step), step


def _inside(array: np.ndarray, mask) -> np.ndarray:
    """The region as (slices, h, w) booleans (everywhere without one)."""
    return (np.ones(array.shape, bool) if mask is None else mask).reshape((-1,) + array.shape[-2:])


def _score(array, bases: Bases, k: int, inside, psnr, bpp) -> tuple[float, float] | None:
    """(score, step) of the base of k iterations (:func:`_step_for_base`), kept in ``bases``."""
    if (k, psnr, bpp) not in bases.scored:
        originals = array.reshape(inside.shape)
        trial = _Slices(originals, bases(k, originals.shape), bases.header.window, inside)
        peak = float(array.max()) - float(array.min())
        bases.scored[k, psnr, bpp] = _step_for_base(trial, bases.file_bytes(k, TILE_BYTES), array, peak, psnr, bpp)
    return bases.scored[k, psnr, bpp]


def scores(array: np.ndarray, bases: Bases, ks, *, psnr: float | None = None, bpp: float | None = None,
           mask: np.ndarray | None = None) -> dict:
    """{k: score} of the wavelet layer over each base of ``ks`` iterations at the target,
    from trials: the file's bytes (PSNR target) or its squared error (rate target), lower
    is better; None where no step fits the rate."""
    inside = _inside(array, mask)
    return {k: (None if (s := _score(array, bases, k, inside, psnr, bpp)) is None else s[0]) for k in ks}


def _best_base(array, bases: Bases, inside, psnr, bpp) -> tuple[int, float] | None:
    """(k, step) of the base whose file is smallest (PSNR) or best (rate), from trials."""
    best = None  # (score, k, step)
    for k in bases.tried(BASES):
        if psnr is not None and best is not None and bases.file_bytes(k, TILE_BYTES) >= best[0]:
            continue  # the base alone is as large as a better file: no step can win (nor needs decoding)
        scored = _score(array, bases, k, inside, psnr, bpp)
        if scored is not None and (best is None or scored[0] < best[0]):
            best = (scored[0], k, scored[1])
    return None if best is None else best[1:]


def candidate(array: np.ndarray, path, full_path, *, psnr: float | None = None, bpp: float | None = None,
              mask: np.ndarray | None = None, tolerance: float = 0.05, key_interval: int | None = None,
              bases: Bases | None = None, **kwargs) -> EncodeStats | None:
    """Encode ``array`` to ``path`` with the best (base, step) for the target; None when
    no step fits a rate target. ``full_path``: the full-iteration encode of the same array
    (its prefixes are the bases); a rate target is met within ``tolerance`` below it where
    possible; ``key_interval`` (not None) adds inter-slice prediction to a base of no learned
    iterations (the step search is on intra trials; the real encodes correct it, and a PSNR
    overshoot gets one coarser try); ``bases``: the decoded prefixes of ``full_path``, if
    another candidate shares them; ``kwargs`` go to :func:`medcodec.pipeline.encode.compress`."""
    inside = _inside(array, mask)
    bases = bases or Bases(full_path)
    chosen = _best_base(array, bases, inside, psnr, bpp)
    if chosen is None:
        return None
    k, step = chosen

    def encode_at(step):
        stats = encode.compress(array, path, iterations=k, transform_step=step,
                                key_interval=key_interval if k == 0 else None, overwrite=True, **kwargs)
        if mask is not None:
            stats.psnr_roi = prep.psnr(array, decode.decompress(path)[0], inside=mask)
        return stats

    if psnr is not None:
        for _ in range(_FINAL_TRIES):
            stats = encode_at(step)
            reached = stats.psnr if mask is None else stats.psnr_roi
            if reached >= psnr:
                break
            step *= min(0.97, 10 ** ((reached - psnr) / 20))  # PSNR falls ~20 log10 of the step
        else:
            return None  # never a candidate that misses its target
        if k == 0 and key_interval is not None and reached - psnr > _SLACK_DB:
            # the intra trials chose the step; predicted slices land a little higher: one
            # coarser step, kept only if the real file still meets the target
            coarser = encode_at(step * 10 ** (0.9 * (reached - psnr) / 20))
            if (coarser.psnr if mask is None else coarser.psnr_roi) >= psnr:
                stats = coarser
            else:
                stats = encode_at(step)  # back to the file that met it
    else:
        stats = _fit_rate(encode_at, step, bpp, tolerance)
        if stats is None:
            return None
    if k == 0:  # what the learned layers contribute: nothing (their tiles all have count 0)
        stats.iterations, stats.tiles, stats.psnr_per_iteration = 0, None, []
    return stats
