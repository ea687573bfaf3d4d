"""Meet one target (bpp, ratio or psnr) with the best candidate file.

:func:`encode_to_target` first encodes with the most learned iterations allowed into a
temporary file beside the output. That encode gives the bases of the wavelet layer over a
few learned iterations (:mod:`.wavelet`) and, for a PSNR target on an integer image, the
bounded-error layer (:mod:`.bounded`), its prefixes decoded once for both; these cheap
candidates run first. The learned-only candidates, uniform (the best prefix: a file truncated to k
iterations is exactly what a k-iteration encode writes) and adaptive tiles
(:mod:`.adaptive`, planned from that encode's costs), run only where the planner's costs do
not bound them away from the best cheap file (:func:`_learned_may_win`): at 1 bpp and above
the network alone is far behind, and its encodes were most of the time. A volume is first
rate-controlled on a sample of its slices (:func:`_probe_keeps_no_network`); where the file
kept there has no learned iterations, only the candidates over none are tried on the volume
and the network never runs on it. Any other image is first encoded with one learned
iteration (:func:`_first_iteration_loses`); where the wavelet layer does clearly better
without it, the same holds. On every development image and target measured the network
was left out this way. The smallest file meeting a PSNR target, or the best
quality within a rate budget, is kept; the others are removed.
"""

from __future__ import annotations

import dataclasses
import math
import os
from pathlib import Path

import numpy as np

from .. import prep
from ..errors import InputError
from ..format import payload_sizes, prefix_sizes, truncate
from ..io.atomic import check_output, move_into_place, temporary_sibling
from ..options import EncodeOptions, check_iterations
from ..pipeline import decode, encode
from ..pipeline.stats import EncodeStats
from . import adaptive, bounded, regions, tiles
from . import wavelet as wavelet_candidate
from .adaptive import BPP_TOLERANCE

# How far the planner's estimates may miss the real learned-only files before a bound on
# them can skip their encodes: their sizes (estimated per tile from slice averages, and
# codes change near tile borders) and their PSNR (measured on the decoded pixels). The real
# misses on the development images: benchmarks/results/encode_speed.md (margins).
RATE_MARGIN = 0.2
PSNR_MARGIN_DB = 0.5

# A volume of at least PROBE_MIN_SLICES slices is first rate-controlled on PROBE_SLICES of
# them (evenly spaced, coded intra). The full encode and the decoding of its prefixes were
# most of a volume's time; on the MR atlas the probe keeps no learned iterations at every
# target measured, 0.25-2 bpp and 40-50 dB (benchmarks/results/encode_speed_probe.md).
PROBE_SLICES = 12
PROBE_MIN_SLICES = 48

# The network is left out where, on a one-iteration encode, the wavelet layer over no
# learned iterations scores at most GATE_RATIO of its score over one (bytes for a PSNR
# target, squared error for a rate): the first iteration buys the most of any, so where its
# bits do better in the wavelet layer the network adds nothing. On the development images
# the ratio was 0.26-0.92 at every target measured (benchmarks/results/encode_speed_gate.md).
GATE_RATIO = 0.95


def _stats_of(path: Path, array: np.ndarray, full: EncodeStats, k: int) -> EncodeStats:
    decoded, _ = decode.decompress(path)
    nbytes = path.stat().st_size
    return EncodeStats(
        path=str(path), bytes=nbytes, voxels=array.size, bpp=8.0 * nbytes / array.size,
        ratio=array.nbytes / nbytes, iterations=k, psnr=prep.psnr(array, decoded),
        max_abs_error=prep.max_abs_error(array, decoded), psnr_per_iteration=full.psnr_per_iteration[:k],
        model_id=full.model_id)


def _network_reaches(array, full: EncodeStats, full_path, psnr: float, mask) -> bool:
    """Whether all learned iterations reach the PSNR (inside the region, if any)."""
    if mask is None:
        return max(full.psnr_per_iteration) >= psnr
    return prep.psnr(array, decode.decompress(full_path)[0], inside=mask) >= psnr


def _uniform_prefix(array, full: EncodeStats, full_path, bpp, psnr) -> int:
    """Iterations of the uniform candidate: the fewest reaching the PSNR, or the most
    fitting the rate; 0 if none fits."""
    if psnr is not None:
        return next((k for k, p in enumerate(full.psnr_per_iteration, 1) if p >= psnr), full.iterations)
    fits = [k for k, size in enumerate(prefix_sizes(full_path), 1) if size <= bpp * array.size / 8.0]
    return fits[-1] if fits else 0


def _learned_candidates(array, full, temps, options: EncodeOptions, bpp, mask, factor, encode_args) -> list:
    """The uniform and adaptive-tiles candidates (learned iterations alone)."""
    psnr, candidates = options.psnr, []
    if psnr is not None and not _network_reaches(array, full, temps["full"], psnr, mask):
        return candidates
    k = _uniform_prefix(array, full, temps["full"], bpp, psnr)
    if mask is not None and psnr is not None:
        k = full.iterations  # the uniform prefix knows no region: all iterations
    if k == 0 and not options.adaptive:
        one = 8.0 * prefix_sizes(temps["full"])[0] / array.size
        name, value = options.target
        raise InputError(f"{name} {value:g} is out of reach: one iteration already takes "
                         f"{one:.3f} bpp; ask for a higher rate or a lower ratio")
    if k and mask is None:  # with a region only tiles know what matters
        truncate(temps["full"], temps["uniform"], k, overwrite=True)
        candidates.append((_stats_of(temps["uniform"], array, full, k), temps["uniform"]))
    if options.adaptive:
        weights = None if mask is None else regions.region_weights(mask, factor, full.cell_sse.shape[2:],
                                                                   options.weight_outside)
        tiled = adaptive.candidate(array, temps["tiles"], full, temps["full"], bpp=bpp, psnr=psnr, mask=mask,
                                   weights=weights, **encode_args)
        if tiled is not None:
            candidates.append((tiled, temps["tiles"]))
    if mask is not None and psnr is not None and not candidates:
        truncate(temps["full"], temps["uniform"], k, overwrite=True)
        candidates.append((_stats_of(temps["uniform"], array, full, k), temps["uniform"]))
    return candidates


def _key_interval(array: np.ndarray, options: EncodeOptions, factor: int) -> int | None:
    """Inter-slice prediction's key interval for the residual candidates over no learned
    iterations (None: every slice intra), unless switched off."""
    return encode.default_key_interval(array, factor) if options.interslice else None


def _bounded_applies(array: np.ndarray, psnr) -> bool:
    """Whether the bounded-error layer is a candidate: a PSNR target on an integer image."""
    return psnr is not None and array.dtype.kind in "iu"


def _layered_candidates(array, temps, options: EncodeOptions, bpp, psnr, mask, factor, encode_args,
                        bases: wavelet_candidate.Bases) -> list:
    """The wavelet-layer and (PSNR target, integer image) bounded-error candidates over
    ``bases`` (the prefixes of ``temps["full"]``), decoded once for both."""
    key, candidates = _key_interval(array, options, factor), []
    if options.wavelet:
        layered = wavelet_candidate.candidate(array, temps["wavelet"], temps["full"], psnr=psnr, bpp=bpp, mask=mask,
                                              tolerance=BPP_TOLERANCE, key_interval=key, bases=bases, **encode_args)
        if layered is not None:
            candidates.append((layered, temps["wavelet"]))
    if _bounded_applies(array, psnr):
        # the bounded-error layer over a few learned iterations may be cheaper even where
        # the network alone reaches the target: the split is chosen by measured rate
        bar = min((c.bytes for c, _ in candidates), default=None)
        candidates.append((bounded.candidate(array, temps["residual"], psnr, temps["full"], True, mask=mask,
                                             key_interval=key, bases=bases, bar=bar, **encode_args),
                           temps["residual"]))
    return candidates


def probe_sample(array: np.ndarray) -> np.ndarray | None:
    """The :data:`PROBE_SLICES` evenly spaced slices a volume is probed on, (n, h, w);
    None below :data:`PROBE_MIN_SLICES` slices."""
    planes = array.reshape((-1,) + array.shape[-2:])
    if len(planes) < PROBE_MIN_SLICES:
        return None
    every = len(planes) // PROBE_SLICES
    return np.ascontiguousarray(planes[every // 2::every][:PROBE_SLICES])


def _probe_keeps_no_network(array: np.ndarray, options: EncodeOptions, path: Path, mask, encode_args) -> bool:
    """Whether rate control on :data:`PROBE_SLICES` evenly spaced slices of a volume (as a
    volume of their own, intra, same target) keeps a file of no learned iterations; False
    for fewer than :data:`PROBE_MIN_SLICES` slices, with a region, or where the sample
    cannot meet the target."""
    residual = options.wavelet or _bounded_applies(array, options.psnr)  # candidates over no iterations
    sample = probe_sample(array)
    if sample is None or mask is not None or not residual:
        return False
    probe = temporary_sibling(path)
    args = {k: encode_args[k] for k in ("progress", "workers") if k in encode_args}
    try:
        kept = encode_to_target(sample, probe, dataclasses.replace(options, interslice=False), overwrite=True, **args)
    except InputError:
        return False
    finally:
        if os.path.exists(probe):
            os.unlink(probe)
    return kept.iterations == 0


def first_iteration_scores(array: np.ndarray, options: EncodeOptions, full_path: Path, bpp,
                           encode_args) -> tuple[wavelet_candidate.Bases, dict]:
    """The bases of a one-iteration encode written to ``full_path``, and the wavelet
    layer's trial scores over 0 and 1 of its iterations at the target
    (:func:`.wavelet.scores`)."""
    encode.compress(array, full_path, iterations=1, overwrite=True, **encode_args)
    bases = wavelet_candidate.Bases(full_path)
    return bases, wavelet_candidate.scores(array, bases, (0, 1), psnr=options.psnr, bpp=bpp)


def _first_iteration_loses(array: np.ndarray, options: EncodeOptions, full_path: Path, cap: int, bpp, mask,
                           encode_args) -> wavelet_candidate.Bases | None:
    """The bases over no learned iterations, from a one-iteration encode written to
    ``full_path``, where the wavelet layer over none beats it over one by
    :data:`GATE_RATIO` at the target (trials; see the constant); else None, as without the
    wavelet layer, with a region or with no iterations allowed. One iteration that alone
    exceeds the rate budget loses too."""
    if not options.wavelet or mask is not None or cap < 1:
        return None
    bases, score = first_iteration_scores(array, options, full_path, bpp, encode_args)
    if score[0] is not None and (score[1] is None or score[0] <= GATE_RATIO * score[1]):
        return bases.without_network()
    return None


def _learned_may_win(array, full: EncodeStats, full_path, layered: list, bpp, psnr, mask) -> bool:
    """Whether a learned-only file (uniform or adaptive tiles: a plan of tile counts) could
    beat the best ``layered`` candidate. No, where the planner's own costs bound every plan
    away from it (:func:`.tiles.bits_floor`, :func:`.tiles.distortion_floor`) by more than
    the planner's estimates miss the real files (:data:`RATE_MARGIN`, :data:`PSNR_MARGIN_DB`);
    then their encodes (most of rate control's time) are skipped. Always yes with a region."""
    if not layered or mask is not None:
        return True
    c = tiles.costs(full.cell_sse, payload_sizes(full_path), full.bytes)
    if psnr is not None:  # the smallest file wins: can a plan reaching the PSNR be smaller?
        floor_bytes = tiles.bits_floor(c, array.size / 10 ** (psnr / 10)) / 8.0
        return floor_bytes * (1 - RATE_MARGIN) < min(s.bytes for s, _ in layered)
    # the best quality within the budget wins: can a plan of a little more than the budget beat it?
    floor = tiles.distortion_floor(c, bpp * array.size * (1 + RATE_MARGIN))
    ceiling = 10 * math.log10(array.size / floor) if floor > 0 else math.inf
    return ceiling + PSNR_MARGIN_DB >= max(s.psnr for s, _ in layered)


def _out_of_reach(options: EncodeOptions, full: EncodeStats) -> InputError:
    name, value = options.target
    if options.psnr is not None:
        return InputError(f"PSNR {options.psnr:g} dB is beyond the model's {max(full.psnr_per_iteration):.2f} dB "
                          f"and float images have no bounded-error layer; ask for less")
    return InputError(f"{name} {value:g} is out of reach: the smallest file this model writes "
                      f"takes more; ask for a higher rate or a lower ratio")


def encode_to_target(array: np.ndarray, path: str | os.PathLike, options: EncodeOptions, *,
                     geometry=None, metadata=None, overwrite: bool = False, progress=None,
                     workers: int | None = None) -> EncodeStats:
    """Encode ``array`` to ``path`` meeting the target of ``options`` (see the module
    docstring); returns the stats of the file kept, measured on it."""
    from ..model import checkpoint

    if options.target is None:
        raise InputError("rate control needs a bpp, ratio or psnr target")
    array = prep.check_array(array)
    bpp, psnr = options.budget_bpp(array.dtype.itemsize), options.psnr
    mask = regions.region_mask(options.roi, array)
    path = check_output(path, overwrite)
    model = checkpoint.load(options.model_id)
    max_it = model.config.max_iterations
    cap = max_it if options.iterations is None else check_iterations(
        options.iterations, max_it, f"iterations (the cap under a {options.target[0]} target)")
    encode_args = dict(geometry=geometry, metadata=metadata, model_id=options.model_id, progress=progress)
    if workers is not None:
        encode_args["workers"] = workers
    temps = {name: temporary_sibling(path) for name in ("full", "tiles", "uniform", "residual", "wavelet")}
    factor = model.config.factor
    try:
        candidates, layered_args = [], (array, temps, options, bpp, psnr, mask, factor, encode_args)
        if _probe_keeps_no_network(array, options, path, mask, encode_args):
            encode.compress(array, temps["full"], iterations=0, base_only=True, overwrite=True, **encode_args)
            candidates = _layered_candidates(*layered_args, wavelet_candidate.Bases(temps["full"], learned=False))
        elif (bases := _first_iteration_loses(array, options, temps["full"], cap, bpp, mask, encode_args)) is not None:
            candidates = _layered_candidates(*layered_args, bases)
        if not candidates:  # the network may help, or none over no learned iterations meets the target
            full = encode.compress(array, temps["full"], iterations=cap, overwrite=True, **encode_args)
            layered = _layered_candidates(*layered_args, wavelet_candidate.Bases(temps["full"]))
            candidates = layered
            if _learned_may_win(array, full, temps["full"], layered, bpp, psnr, mask):
                candidates = _learned_candidates(array, full, temps, options, bpp, mask, factor, encode_args) + layered
            if not candidates:
                raise _out_of_reach(options, full)
        if psnr is not None:  # the smallest file meeting the target
            best, best_path = min(candidates, key=lambda c: c[0].bytes)
        else:  # all fit the budget: the best quality (inside the region, if any)
            best, best_path = max(candidates, key=lambda c: c[0].psnr if c[0].psnr_roi is None else c[0].psnr_roi)
        move_into_place(best_path, path, overwrite)
        best.path = str(path)
        if mask is not None and best.psnr_roi is None:
            best.psnr_roi = prep.psnr(array, decode.decompress(path)[0], inside=mask)
        return best
    finally:
        for p in temps.values():
            if os.path.exists(p):
                os.unlink(p)


def compress_to(array: np.ndarray, path: str | os.PathLike, *, bpp: float | None = None,
                ratio: float | None = None, psnr: float | None = None, overwrite: bool = False,
                **kwargs) -> EncodeStats:
    """Encode ``array`` to ``path`` meeting exactly one target: bpp (the best quality at a
    rate <= B, within 5 % below B where the model's range allows), ratio (original bytes /
    file bytes >= R) or psnr (>= DB at the least rate). Other keywords: the fields of
    :class:`medcodec.options.EncodeOptions` (``iterations`` caps the learned iterations;
    ``adaptive``, ``roi``, ``background_weight``, ``wavelet``, ``model_id``) and
    ``geometry``, ``metadata``, ``progress``, ``workers``."""
    if sum(v is not None for v in (bpp, ratio, psnr)) != 1:
        raise InputError("give exactly one of bpp, ratio, psnr")
    run_args = {k: kwargs.pop(k) for k in ("geometry", "metadata", "progress", "workers") if k in kwargs}
    options = EncodeOptions.from_kwargs(bpp=bpp, ratio=ratio, psnr=psnr, **kwargs)
    return encode_to_target(array, path, options, overwrite=overwrite, **run_args)
