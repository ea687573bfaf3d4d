"""How to encode: one :class:`EncodeOptions` holds every rate/quality mode, its defaults and
its validation, for the library, the command line, batch conversion and the plugins alike.

Modes (one per encode):

- explicit: ``iterations`` K learned iterations (default :data:`DEFAULT_ITERATIONS`), with
  ``max_error`` E a bounded-error layer on top (0 = lossless; its base then defaults to
  :data:`BOUNDED_ERROR_BASE_ITERATIONS`);
- a target, exactly one of ``bpp``, ``ratio``, ``psnr``: rate control chooses the coding
  (:mod:`medcodec.ratecontrol`); ``iterations`` then caps the learned iterations, and
  ``roi`` / ``background_weight`` / ``adaptive`` / ``wavelet`` steer the choice.

The checks that need the image (integer pixels for a bound) or the model (its largest
iteration count, :func:`check_iterations`) run where those are known.
"""

from __future__ import annotations

import dataclasses
import math
import os
from typing import Any

import numpy as np

from .errors import InputError

DEFAULT_ITERATIONS = 8
# Learned iterations under the bounded-error layer when none are named (lossless and
# near-lossless). The residual coder predicts from decoded neighbours, so the coarsest base
# costs least: on the four development images (benchmarks/results/lossless_base.md, E = 0
# and 2) no learned iterations (the window's middle as base) beat 1 and 2 everywhere, and
# such a file decodes without the network; 3-D volumes then also get inter-slice prediction.
BOUNDED_ERROR_BASE_ITERATIONS = 0
DEFAULT_BACKGROUND_WEIGHT = 0.1  # errors outside a region of interest count 10 dB less
MAX_ERROR_LIMIT = 65535  # the format stores E as u16
TARGETS = ("bpp", "ratio", "psnr")
TARGET_STEERING = ("roi", "background_weight", "adaptive", "wavelet", "interslice")  # meaningful with a target only


def _is_int(v) -> bool:
    return isinstance(v, (int, np.integer)) and not isinstance(v, bool)


def _is_number(v) -> bool:
    return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool)


def check_iterations(value, max_iterations: int, what: str = "iterations") -> int:
    """``value`` as an int from 1 to the model's ``max_iterations``, else InputError."""
    if not _is_int(value) or not 1 <= value <= max_iterations:
        raise InputError(f"{what} must be an integer from 1 to {max_iterations}, got {value!r}")
    return int(value)


@dataclasses.dataclass(frozen=True)
class EncodeOptions:
    """Rate/quality mode of one encode, validated on construction (InputError)."""

    iterations: int | None = None       # learned iterations; with a target: their cap
    max_error: int | None = None        # bounded-error layer: |decoded - original| <= E (0 = lossless)
    bpp: float | None = None            # targets (at most one): bits per voxel from the file's bytes,
    ratio: float | None = None          # compression ratio (original bytes / file bytes),
    psnr: float | None = None           # PSNR in dB, peak = the image's max - min
    roi: Any = dataclasses.field(default=None, compare=False)  # "auto", a label image (nonzero = inside) or its path
    background_weight: float | None = None  # weight of errors outside ``roi`` (None: the default)
    adaptive: bool = True               # adaptive tiles (per-tile iteration counts) under a target
    wavelet: bool = True                # the wavelet layer as a rate-control candidate
    interslice: bool = True             # volumes: the residual layer predicts each slice from the one before
    model_id: str | None = None         # None: the shipped default checkpoint

    def __post_init__(self):
        for check in _CHECKS:
            check(self)

    @classmethod
    def from_kwargs(cls, options: "EncodeOptions | None" = None, **kwargs) -> "EncodeOptions":
        """``options`` (or the defaults) with the given fields replaced; an unknown name is an
        InputError naming the known ones."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(kwargs) - names)
        if unknown:
            raise InputError(f"unknown encode option(s) {', '.join(unknown)}; known: {', '.join(sorted(names))}")
        return dataclasses.replace(options or cls(), **kwargs)

    @property
    def target(self) -> tuple[str, float] | None:
        """(name, value) of the rate or quality target, or None for an explicit encode."""
        given = [(n, getattr(self, n)) for n in TARGETS if getattr(self, n) is not None]
        return given[0] if given else None

    @property
    def lossless(self) -> bool:
        return self.max_error == 0

    @property
    def base_iterations(self) -> int:
        """Learned iterations of an explicit encode (not checked against the model here)."""
        if self.iterations is not None:
            return int(self.iterations)
        return DEFAULT_ITERATIONS if self.max_error is None else BOUNDED_ERROR_BASE_ITERATIONS

    @property
    def weight_outside(self) -> float:
        """The background weight in force (the default when none was given)."""
        return DEFAULT_BACKGROUND_WEIGHT if self.background_weight is None else float(self.background_weight)

    def budget_bpp(self, itemsize: int) -> float | None:
        """The rate budget in bits per voxel (a ratio turned into a rate), None for psnr or
        an explicit encode."""
        if self.bpp is not None:
            return float(self.bpp)
        if self.ratio is not None:
            return 8.0 * itemsize / float(self.ratio)
        return None


def _chk_iterations(o: EncodeOptions) -> None:
    if o.iterations is not None and (not _is_int(o.iterations) or o.iterations < 1):
        raise InputError(f"iterations (with a bpp/ratio/psnr target: the cap on learned iterations) must be "
                         f"a whole number of at least 1, got {o.iterations!r}")


def _chk_max_error(o: EncodeOptions) -> None:
    if o.max_error is not None and (not _is_int(o.max_error) or not 0 <= o.max_error <= MAX_ERROR_LIMIT):
        raise InputError(f"max_error must be a whole number from 0 to {MAX_ERROR_LIMIT}, got {o.max_error!r}")


def _chk_targets(o: EncodeOptions) -> None:
    given = [n for n in TARGETS if getattr(o, n) is not None]
    if len(given) > 1:
        raise InputError(f"give at most one of bpp, ratio, psnr (got {', '.join(given)})")
    for name in given:
        value = getattr(o, name)
        if not _is_number(value) or not math.isfinite(value) or value <= 0:
            raise InputError(f"{name} must be a positive number, got {value!r}")
    if given and o.max_error is not None:
        raise InputError(f"a {given[0]} target chooses the error bound itself; do not combine it with "
                         "max_error (--max-error, --bound, --lossless)")


def _chk_steering(o: EncodeOptions) -> None:
    steering = [n for n in TARGET_STEERING
                if (getattr(o, n) is not None if n in ("roi", "background_weight") else not getattr(o, n))
                and not (n == "interslice" and o.max_error is not None)]  # lossless volumes predict too
    if steering and o.target is None:
        names = {"roi": "roi (--roi)", "background_weight": "background_weight (--background-weight)",
                 "adaptive": "adaptive=False (--uniform)", "wavelet": "wavelet=False (--no-wavelet)",
                 "interslice": "interslice=False (--no-interslice)"}
        raise InputError(f"{', '.join(names[n] for n in steering)} need a bpp, ratio or psnr target "
                         "(--bpp/--ratio/--psnr); an explicit --iterations encode is uniform already")


def _chk_region(o: EncodeOptions) -> None:
    if isinstance(o.roi, (str, os.PathLike)) and o.roi != "auto" and not os.path.isfile(o.roi):
        raise InputError(f"roi must be 'auto', a label image or the path of one, got {o.roi!r}")
    if o.roi is not None and not o.adaptive:
        raise InputError("a region of interest needs adaptive tiles; drop --uniform (adaptive=False)")
    w = o.background_weight
    if w is not None and not (_is_number(w) and 0 <= w <= 1):
        raise InputError(f"background weight must be within 0..1, got {w!r}")


# Small named checks, run in order on construction.
_CHECKS = (_chk_iterations, _chk_max_error, _chk_targets, _chk_steering, _chk_region)


ITERATIONS_ENV = "MEDCODEC_ITERATIONS"


def iterations_from_environment() -> int | None:
    """``$MEDCODEC_ITERATIONS``: the learned iterations of a lossy plugin write (SimpleITK,
    imageio) that names none; None when unset (then :data:`DEFAULT_ITERATIONS`)."""
    text = os.environ.get(ITERATIONS_ENV, "").strip()
    if not text:
        return None
    try:
        return int(text)
    except ValueError:
        raise InputError(f"{ITERATIONS_ENV}={text!r} is not a whole number") from None
