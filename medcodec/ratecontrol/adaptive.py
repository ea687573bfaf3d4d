"""The adaptive-tiles candidate: per-tile iteration counts chosen by rate-distortion
(:mod:`.tiles`), encoded, measured and re-planned until the file meets its target."""

from __future__ import annotations

from .. import prep
from ..format import payload_sizes
from ..pipeline import decode, encode
from ..pipeline.stats import EncodeStats
from . import tiles

BPP_TOLERANCE = 0.05  # a rate target is met within 5 % below it
MAX_PASSES = 4  # adaptive encodes per target (plan, measure, correct)


def candidate(array, path, full: EncodeStats, full_path, *, bpp, psnr, mask=None, weights=None,
              **kwargs) -> EncodeStats | None:
    """Encode with RD-chosen tile counts meeting the target; None if no pass met it. With a
    region ``mask``, cell errors are weighted by ``weights`` and PSNR is measured inside.
    ``kwargs`` go to :func:`medcodec.pipeline.encode.compress`."""
    costs = tiles.costs(full.cell_sse, payload_sizes(full_path), full.bytes, weights=weights)

    def quality(stats):
        if mask is None:
            return stats.psnr
        stats.psnr_roi = prep.psnr(array, decode.decompress(path)[0], inside=mask)
        return stats.psnr_roi

    def encode_plan(plan):
        return encode.compress(array, path, iterations=max(1, int(plan.counts.max())), tiles=plan,
                               overwrite=True, **kwargs)

    if psnr is not None:
        inside = array.size if mask is None else int(mask.sum())
        goal = inside / 10 ** (psnr / 10)  # squared error allowed, normalised units
        for _ in range(MAX_PASSES):
            stats = encode_plan(tiles.plan_for_distortion(costs, goal))
            reached = quality(stats)
            if reached >= psnr:
                return stats
            goal *= 10 ** ((reached - psnr) / 10) * 0.97  # shrink the error budget by the miss
        return None
    target = bpp * array.size  # bits allowed
    goal = target * (1 - BPP_TOLERANCE / 2)  # aim inside the tolerance band
    best = None  # (bits, plan) of the largest file within a rate budget
    for _ in range(MAX_PASSES):
        plan = tiles.plan_for_bits(costs, goal)
        stats = encode_plan(plan)
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
    stats = encode_plan(best[1])
    quality(stats)
    return stats
