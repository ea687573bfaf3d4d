"""Rate-control modes: encode to a bit rate, a compression ratio or a quality target.

``compress_to(array, path, bpp=B | ratio=R | psnr=DB)`` first encodes with the model's
maximum iteration count into a temporary file beside ``path``. That one encode gives two
candidates:

- uniform: the best prefix of k iterations everywhere (a file truncated to k iterations is
  exactly what a k-iteration encode writes, :func:`medcodec.container.truncate`), sized
  from the index without rewriting;
- adaptive tiles (default, ``adaptive=True``): each 32x32 tile gets its own count, chosen by
  rate-distortion optimisation (:mod:`medcodec.tiles`) from the measured per-cell errors and
  code sizes, then encoded, measured, and re-planned with a corrected budget until the file
  lands within :data:`BPP_TOLERANCE` below the rate target (or meets the PSNR target) -
  at most :data:`MAX_PASSES` encodes.

The wavelet residual layer over 0, 1, 2 or 4 learned iterations is a third candidate for
every target (``wavelet=True``, :mod:`medcodec.wavelet_rate`), and for a PSNR target on an
integer image the bounded-error residual layer over a few learned iterations is a fourth
(:func:`_with_residual`); they are how targets beyond the network's reach are met. The
smallest file that meets a PSNR target, or the best quality within a rate budget, is kept.
Rates are counted from the bytes of the real file; PSNR uses the image's own dynamic range
(max - min) as peak, as the benchmarks do.

In every case the split between learned iterations and a residual layer is chosen by
measured rate (or quality) of real encodes. All modes return :class:`medcodec.api.EncodeStats` measured on
the written file.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np

from . import api, container, prep, slicepool, tiles, wavelet_rate
from . import roi as roi_mod
from .errors import InputError

# Base iterations under a residual layer: the residual coder predicts from decoded
# neighbours, so a coarse base costs least in all (measured on the development CT, lossless:
# 5.98 / 6.19 / 6.58 bpp over 2 / 4 / 8 iterations).
RESIDUAL_BASE_ITERATIONS = 2
DEFAULT_ITERATIONS = 8
BPP_TOLERANCE = 0.05  # a rate target is met within 5 % below it
MAX_PASSES = 4  # adaptive encodes per target (plan, measure, correct)


def default_iterations(max_error: int | None) -> int:
    """Learned iterations when the caller names none: 8, or 2 under a residual layer."""
    return DEFAULT_ITERATIONS if max_error is None else RESIDUAL_BASE_ITERATIONS


def _stats_of(path: Path, array: np.ndarray, full: api.EncodeStats, k: int) -> api.EncodeStats:
    decoded, _ = api.decompress(path)
    nbytes = path.stat().st_size
    return api.EncodeStats(
        path=str(path), bytes=nbytes, voxels=array.size, bpp=8.0 * nbytes / array.size,
        ratio=array.nbytes / nbytes, iterations=k, psnr=prep.psnr(array, decoded),
        max_error=prep.max_abs_error(array, decoded), psnr_per_iteration=full.psnr_per_iteration[:k],
        model_id=full.model_id)


def compress_to(array: np.ndarray, path: str | os.PathLike, *, bpp: float | None = None,
                ratio: float | None = None, psnr: float | None = None, overwrite: bool = False,
                adaptive: bool = True, roi=None, background_weight: float = roi_mod.DEFAULT_BACKGROUND_WEIGHT,
                wavelet: bool = True, **kwargs) -> api.EncodeStats:
    """Encode ``array`` to ``path`` meeting exactly one target (see the module docstring).

    bpp: the best quality at a rate <= B (within 5 % of B where the model's range allows);
    ratio: original bytes / file bytes >= R (same, as a rate); psnr: >= DB at the least rate.
    ``adaptive`` False keeps one iteration count for the whole image. ``iterations`` caps
    the counts (decoding runs the network for the largest count over the whole slice, so
    the cap bounds decode time; default: the model's maximum). ``roi``: "auto" (body
    mask, :func:`medcodec.roi.body_mask`) or a label image (nonzero = inside): tiles weigh
    errors outside it by ``background_weight`` and a PSNR target holds inside it (adaptive
    only). ``wavelet`` False leaves out the wavelet residual layer candidate
    (:mod:`medcodec.wavelet_rate`). ``kwargs`` go to :func:`medcodec.api.compress` (geometry, metadata, model_id,
    progress).
    """
    from . import checkpoint
    from .imagefiles import check_output, temporary_sibling

    given = [(n, v) for n, v in (("bpp", bpp), ("ratio", ratio), ("psnr", psnr)) if v is not None]
    if len(given) != 1:
        raise InputError("give exactly one of bpp, ratio, psnr")
    name, value = given[0]
    if kwargs.get("max_error") is not None:
        raise InputError(f"a {name} target chooses the error bound itself; do not combine it with max_error")
    cap = kwargs.get("iterations")
    kwargs = {k: v for k, v in kwargs.items() if k not in ("max_error", "iterations", "tiles")}
    if not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise InputError(f"{name} must be a positive number, got {value!r}")
    array = prep.check_array(array)
    if name == "ratio":
        bpp = 8.0 * array.dtype.itemsize / value
    if not (isinstance(background_weight, (int, float)) and 0 <= background_weight <= 1):
        raise InputError(f"background weight must be within 0..1, got {background_weight!r}")
    mask = _region_mask(roi, array, adaptive)
    path = check_output(path, overwrite)
    model = checkpoint.load(kwargs.get("model_id"))
    max_it = model.config.max_iterations
    if cap is not None and (not isinstance(cap, (int, np.integer)) or not 1 <= cap <= max_it):
        raise InputError(f"iterations (the cap under a {name} target) must be from 1 to {max_it}, got {cap!r}")
    temps = {name: temporary_sibling(path) for name in ("full", "tiles", "uniform", "residual", "wavelet")}
    full_path = temps["full"]
    try:
        full = api.compress(array, full_path, iterations=int(cap or max_it), overwrite=True, **kwargs)
        candidates = []  # (stats, temporary file) meeting the target
        reaches = psnr is None or _network_reaches(array, full, full_path, psnr, mask)
        if reaches:
            k = _uniform_prefix(array, full, full_path, bpp, psnr)
            if mask is not None and psnr is not None:
                k = full.iterations  # the uniform prefix knows no region: all iterations
            if k == 0 and not adaptive:
                one = 8.0 * container.prefix_sizes(full_path)[0] / array.size
                raise InputError(f"{name} {value:g} is out of reach: one iteration already takes "
                                 f"{one:.3f} bpp; ask for a higher rate or a lower ratio")
            if k and mask is None:  # with a region only tiles know what matters
                container.truncate(full_path, temps["uniform"], k, overwrite=True)
                candidates.append((_stats_of(temps["uniform"], array, full, k), temps["uniform"]))
            if adaptive:
                weights = None if mask is None else _region_weights(mask, model.config.factor, full, background_weight)
                tiled = _adaptive(array, temps["tiles"], full, full_path, bpp=bpp, psnr=psnr, mask=mask,
                                  weights=weights, **kwargs)
                if tiled is not None:
                    candidates.append((tiled, temps["tiles"]))
            if mask is not None and psnr is not None and not candidates:
                container.truncate(full_path, temps["uniform"], k, overwrite=True)
                candidates.append((_stats_of(temps["uniform"], array, full, k), temps["uniform"]))
        if wavelet:
            layered = wavelet_rate.candidate(array, temps["wavelet"], full_path, psnr=psnr, bpp=bpp, mask=mask,
                                             tolerance=BPP_TOLERANCE, **kwargs)
            if layered is not None:
                candidates.append((layered, temps["wavelet"]))
        if psnr is not None and array.dtype.kind in "iu":
            # the residual layer over a few learned iterations may be cheaper even where the
            # network alone reaches the target: the split is chosen by measured rate
            candidates.append((_with_residual(array, temps["residual"], psnr, full, full_path, True,
                                              mask=mask, **kwargs), temps["residual"]))
        if not candidates:
            if psnr is not None:
                raise InputError(f"PSNR {psnr:g} dB is beyond the model's {max(full.psnr_per_iteration):.2f} dB "
                                 f"and float images have no bounded-error layer; ask for less")
            raise InputError(f"{name} {value:g} is out of reach: the smallest file this model writes "
                             f"takes more; ask for a higher rate or a lower ratio")
        if psnr is not None:  # the smallest file meeting the target
            best, best_path = min(candidates, key=lambda c: c[0].bytes)
        else:  # all fit the budget: the best quality (inside the region, if any)
            best, best_path = max(candidates, key=lambda c: c[0].psnr if c[0].psnr_roi is None else c[0].psnr_roi)
        container.move_into_place(best_path, path, overwrite)
        best.path = str(path)
        if mask is not None and best.psnr_roi is None:
            best.psnr_roi = roi_mod.psnr_inside(array, api.decompress(path)[0], mask)
        return best
    finally:
        for p in temps.values():
            if os.path.exists(p):
                os.unlink(p)


def _region_mask(roi, array: np.ndarray, adaptive: bool) -> np.ndarray | None:
    """The caller's region as a bool array of the image's shape ("auto": the body)."""
    if roi is None:
        return None
    if not adaptive:
        raise InputError("a region of interest needs adaptive tiles; drop --uniform")
    if isinstance(roi, str):
        if roi != "auto":
            raise InputError(f"roi must be 'auto' or a label image, got {roi!r}")
        return roi_mod.body_mask(array)
    return roi_mod.check_mask(roi, array.shape)


def _region_weights(mask: np.ndarray, factor: int, full: api.EncodeStats, background_weight: float) -> np.ndarray:
    """Per code cell weights of the coded slices (pieces, if the slices were cut)."""
    planes = mask.reshape((-1,) + mask.shape[-2:])
    grid = prep.piece_grid(planes.shape[1], planes.shape[2], factor)
    planes = planes if grid is None else prep.to_pieces(planes, *grid)
    return roi_mod.cell_weights(planes, factor, full.cell_sse.shape[2:], background_weight)


def _network_reaches(array, full: api.EncodeStats, full_path, psnr: float, mask) -> bool:
    """Whether all learned iterations reach the PSNR (inside the region, if any)."""
    if mask is None:
        return max(full.psnr_per_iteration) >= psnr
    return roi_mod.psnr_inside(array, api.decompress(full_path)[0], mask) >= psnr


def _uniform_prefix(array, full: api.EncodeStats, full_path, bpp, psnr) -> int:
    """Iterations of the uniform candidate: the fewest reaching the PSNR, or the most
    fitting the rate; 0 if none fits."""
    if psnr is not None:
        return next((k for k, p in enumerate(full.psnr_per_iteration, 1) if p >= psnr), full.iterations)
    fits = [k for k, size in enumerate(container.prefix_sizes(full_path), 1) if size <= bpp * array.size / 8.0]
    return fits[-1] if fits else 0


def _adaptive(array, path, full: api.EncodeStats, full_path, *, bpp, psnr, mask=None, weights=None,
              **kwargs) -> api.EncodeStats | None:
    """Encode with RD-chosen tile counts meeting the target; None if no pass met it. With a
    region ``mask``, cell errors are weighted by ``weights`` and PSNR is measured inside."""
    costs = tiles.costs(full.cell_sse, container.payload_sizes(full_path), full.bytes, weights=weights)

    def quality(stats):
        if mask is None:
            return stats.psnr
        stats.psnr_roi = roi_mod.psnr_inside(array, api.decompress(path)[0], mask)
        return stats.psnr_roi

    if psnr is not None:
        inside = array.size if mask is None else int(mask.sum())
        target = inside / 10 ** (psnr / 10)  # squared error allowed, normalised units
        goal = target
    else:
        target = bpp * array.size  # bits allowed
        goal = target * (1 - BPP_TOLERANCE / 2)  # aim inside the tolerance band

    def encode(plan):
        return api.compress(array, path, iterations=max(1, int(plan.counts.max())), tiles=plan,
                            overwrite=True, **kwargs)

    best = None  # (bits, plan) of the largest file within a rate budget
    for _ in range(MAX_PASSES):
        plan = tiles.plan_for_distortion(costs, goal) if psnr is not None else tiles.plan_for_bits(costs, goal)
        stats = encode(plan)
        if psnr is not None:
            reached = quality(stats)
            if reached >= psnr:
                return stats
            goal *= 10 ** ((reached - psnr) / 10) * 0.97  # shrink the error budget by the miss
            continue
        bits = 8.0 * stats.bytes
        if bits <= target:
            if bits >= target * (1 - BPP_TOLERANCE):
                quality(stats)
                return stats
            if best is None or bits > best[0]:
                best = (bits, plan)
        goal *= target * (1 - BPP_TOLERANCE / 2) / bits
    # no pass landed in the band: the best plan within the budget (encoded again)
    if best is None:
        return None
    stats = encode(best[1])
    quality(stats)
    return stats


RESIDUAL_BASES = (1, 2, 4, 8)  # learned iterations tried under a residual layer


def _with_residual(array, path, target_db: float, full: api.EncodeStats, full_path, overwrite: bool,
                   mask=None, **kwargs) -> api.EncodeStats:
    """Meet a PSNR with the residual layer (integer images; beyond the network's reach, or
    as a candidate cheaper than the network alone), choosing the split
    by rate: for each base of k learned iterations (decoded from the full encode's prefix),
    the largest error bound E whose measured PSNR (inside ``mask`` if given) meets the target
    (bisection; E <= rms error always does, since MSE <= E^2), then the (k, E) of the
    smallest file."""
    peak = float(array.max()) - float(array.min())
    originals = array.reshape((-1,) + array.shape[-2:])
    inside = np.ones(originals.shape, bool) if mask is None else mask.reshape(originals.shape)
    allowed_sse = int(inside.sum()) * (peak / 10 ** (target_db / 20)) ** 2
    guaranteed = min(int(math.floor(peak / 10 ** (target_db / 20))), 65535)  # the format's largest E
    sizes = container.prefix_sizes(full_path)
    best = None  # (bytes, k, E)
    with slicepool.Pool(slicepool.default_workers(len(originals))) as pool:  # once for all trials
        for k in (k for k in RESIDUAL_BASES if k <= len(sizes)):
            base, _ = api.decompress(full_path, iterations=k, precision="float32")  # the layer's base
            base = base.reshape(originals.shape)

            def trial(e):
                nbytes, sse = 0, 0.0
                coded = pool.map_runs("medcodec.residual.encode_slices", len(originals),
                                      lambda run: (originals[run], base[run], e))
                for (data, final), o, m in zip(coded, originals, inside):
                    nbytes += len(data) + RESD_OVERHEAD_BYTES
                    sse += float(np.sum(np.square(final.astype(np.float64) - o)[m]))
                return nbytes, sse <= allowed_sse

            # lo meets the target; errors mostly well inside +-E let E go far above the rms
            lo, hi = guaranteed, min(8 * guaranteed + 8, 65535)
            lo_bytes, _ = trial(lo)
            while hi - lo > 1:
                mid = (lo + hi) // 2
                mid_bytes, ok = trial(mid)
                lo, hi, lo_bytes = (mid, hi, mid_bytes) if ok else (lo, mid, lo_bytes)
            total = sizes[k - 1] + lo_bytes
            if best is None or total < best[0]:
                best = (total, k, lo)
    _, k, e = best
    stats = api.compress(array, path, iterations=k, max_error=e, overwrite=overwrite, **kwargs)
    region = inside.reshape(array.shape)
    reached = prep.psnr(array[region], api.decompress(path)[0][region], peak=peak)
    if reached < target_db:
        # pieces (GRID) are coded apart, so the trial above was an estimate: fall back to the
        # bound that guarantees the target
        stats = api.compress(array, path, iterations=k, max_error=guaranteed, overwrite=True, **kwargs)
        reached = prep.psnr(array[region], api.decompress(path)[0][region], peak=peak)
    if mask is not None:  # reported as the region's PSNR, measured on the decoded file
        stats.psnr_roi = reached
    return stats


RESD_OVERHEAD_BYTES = 16 + 13 + 12  # RESD chunk header/CRC, its prefix, its RIDX entry
