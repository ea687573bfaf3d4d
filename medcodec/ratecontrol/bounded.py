"""The bounded-error candidate for a PSNR target (integer images): a few learned iterations
(or none: the window's middle as base, with inter-slice prediction on volumes) and the
bounded-error layer, with the split and the bound E chosen by measured rate."""

from __future__ import annotations

import math

import numpy as np

from .. import prep
from ..coding.layers import BoundedErrorCodec
from ..options import MAX_ERROR_LIMIT
from ..pipeline import decode, encode
from ..pipeline.stats import EncodeStats
from .wavelet import Bases

BASES = (0, 1, 2, 4, 8)  # learned iterations tried under the bounded-error layer
RESD_OVERHEAD_BYTES = 16 + 13 + 12  # RESD chunk header/CRC, its prefix, its RIDX entry
TILE_BYTES = 40  # k = 0: the TILE chunk of all-zero counts (framing, prefix, deflated zeros), about


def _largest_bound(trial, guaranteed: int) -> tuple[int, int]:
    """(E, bytes) of the largest bound whose trial meets the target, by bisection from
    ``guaranteed`` (which always does); errors mostly well inside +-E let E go far above
    the rms error."""
    lo, hi = guaranteed, min(8 * guaranteed + 8, MAX_ERROR_LIMIT)
    lo_bytes, _ = trial(lo)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        mid_bytes, ok = trial(mid)
        lo, hi, lo_bytes = (mid, hi, mid_bytes) if ok else (lo, mid, lo_bytes)
    return lo, lo_bytes


def candidate(array, path, target_db: float, full_path, overwrite: bool, mask=None,
              key_interval: int | None = None, bases: Bases | None = None, bar: int | None = None,
              **kwargs) -> EncodeStats:
    """Meet a PSNR with the bounded-error layer (beyond the network's reach, or as a
    candidate cheaper than the network alone): for each base of k learned iterations
    (decoded from the full encode's prefix), the largest bound E whose measured PSNR (inside
    ``mask`` if given) meets the target (E <= rms error always does, since MSE <= E^2), then
    the (k, E) of the smallest file; over k = 0 a volume's slices are predicted from the ones
    before with ``key_interval`` (None: not); ``bases``: the decoded prefixes of ``full_path``,
    if another candidate shares them; ``bar``: the bytes of a file that already meets the
    target (bases of k >= 1 at least this large are not tried). ``kwargs`` go to
    :func:`medcodec.pipeline.encode.compress`."""
    peak = float(array.max()) - float(array.min())
    originals = array.reshape((-1,) + array.shape[-2:])
    inside = np.ones(originals.shape, bool) if mask is None else mask.reshape(originals.shape)
    allowed_sse = int(inside.sum()) * (peak / 10 ** (target_db / 20)) ** 2
    guaranteed = min(int(math.floor(peak / 10 ** (target_db / 20))), MAX_ERROR_LIMIT)
    bases = bases or Bases(full_path)
    header = bases.header
    best = None  # (bytes, k, E)
    for k in bases.tried(BASES):
        fixed, key = bases.file_bytes(k, TILE_BYTES), key_interval if k == 0 else None
        if k and fixed >= (best[0] if bar is None else min(bar, best[0])):  # best: set at k = 0
            continue  # the base alone is as large as a file meeting the target: never smaller
        base = bases(k, originals.shape)  # k = 0: the window's middle

        def trial(e):
            nbytes, sse = fixed, 0.0
            codec = BoundedErrorCodec(e, key, header.window)
            for (record, final), o, m in zip(codec.encode_slices(originals, base), originals, inside):
                data = record if key is None else record.record
                nbytes += len(data) + RESD_OVERHEAD_BYTES + (0 if key is None else 1 + len(record.weights))
                sse += float(np.sum(np.square(final.astype(np.float64) - o)[m]))
            return nbytes, sse <= allowed_sse

        e, nbytes = _largest_bound(trial, guaranteed)
        if best is None or nbytes < best[0]:
            best = (nbytes, k, e)
    _, k, e = best
    key = key_interval if k == 0 else None
    stats = encode.compress(array, path, iterations=k, max_error=e, key_interval=key, overwrite=overwrite, **kwargs)
    region = inside.reshape(array.shape)
    reached = prep.psnr(array, decode.decompress(path)[0], inside=region)
    if reached < target_db:
        # pieces (GRID) are coded apart, so the trial above was an estimate: fall back to the
        # bound that guarantees the target
        stats = encode.compress(array, path, iterations=k, max_error=guaranteed, key_interval=key, overwrite=True,
                                **kwargs)
        reached = prep.psnr(array, decode.decompress(path)[0], inside=region)
    if mask is not None:  # reported as the region's PSNR, measured on the decoded file
        stats.psnr_roi = reached
    return stats
