"""SimpleITK's writer options (``compressor``, ``compressionLevel``) as medcodec's
:class:`medcodec.options.EncodeOptions` for a ``.mlc`` write; the syntax is described in
:mod:`medcodec_plugins.sitk_hook`. Errors are :class:`medcodec.errors.InputError`."""

from __future__ import annotations

import warnings

from medcodec.errors import InputError, MedcodecError

_NUMBER_OPTIONS = {"iterations": int, "k": int, "max_error": int, "bpp": float, "ratio": float,
                   "psnr": float, "background_weight": float}
_FLAG_OPTIONS = {"lossless": ("max_error", 0), "uniform": ("adaptive", False), "no_wavelet": ("wavelet", False),
                 "no_interslice": ("interslice", False)}
# compressor names of ITK's own ImageIOs: tolerated silently on a .mlc write (default coding)
ITK_COMPRESSORS = frozenset({"gzip", "zlib", "deflate", "adobe_deflate", "lzw", "packbits", "jpeg", "jpeg2000",
                             "htj2k", "lzma", "zstd", "bz2", "none", "default"})


class ForeignCompressorWarning(UserWarning):
    """A ``compressor`` name that neither medcodec nor any ITK format knows (ignored)."""


def _parse_compressor(compressor: str) -> dict:
    """The options named in SimpleITK's ``compressor`` string (see the module docstring)."""
    opts: dict = {}
    text = (compressor or "").strip().lower()
    if text and not set(",:=") & set(text) and text not in _FLAG_OPTIONS:
        # another format's compressor, as SimpleITK users pass it: ITK ignores what its IO lacks
        if text not in ITK_COMPRESSORS:
            warnings.warn(f"compressor {compressor!r} is unknown; the .mlc file is written with medcodec's "
                          "default coding", ForeignCompressorWarning, stacklevel=3)
        return opts
    text = text.replace("medcodec:", "")
    for part in filter(None, (p.strip() for p in text.split(","))):
        key, _, value = (x.strip() for x in part.partition("="))
        if key in _FLAG_OPTIONS and not value:
            field, setting = _FLAG_OPTIONS[key]
            opts[field] = setting
        elif key == "roi" and value == "auto":
            opts["roi"] = "auto"
        elif key in _NUMBER_OPTIONS and value:
            try:
                opts["iterations" if key == "k" else key] = _NUMBER_OPTIONS[key](value)
            except ValueError:
                raise InputError(f"compressor option {part!r}: {key} must be a number")
        else:
            raise InputError(f"unknown compressor option {part!r}; use iterations=K, bpp=B, "
                                    "ratio=R, psnr=DB, max_error=E or lossless (with a target also "
                                    "roi=auto, background_weight=W, uniform, no_wavelet, no_interslice)")
    return opts


def write_options(compressor: str = "", level: int = -1):
    """The :class:`medcodec.options.EncodeOptions` of a ``.mlc`` write from SimpleITK's
    compression options: ``compressor`` first, then ``compressionLevel`` as the iteration
    count (clamped to the model's maximum, as ITK clamps levels), then (lossy writes)
    ``$MEDCODEC_ITERATIONS``, then the defaults."""
    from medcodec.options import EncodeOptions, TARGETS, iterations_from_environment

    opts = _parse_compressor(compressor)
    if "iterations" not in opts and not set(TARGETS) & set(opts):
        if level is not None and level > 0:
            opts["iterations"] = min(int(level), _max_iterations(int(level)))
        elif "max_error" not in opts:  # a bounded-error base has its own default
            opts["iterations"] = iterations_from_environment()
    try:
        return EncodeOptions(**opts)
    except MedcodecError as e:
        raise InputError(f"compressor {compressor!r}: {e}") from e




def _max_iterations(default: int) -> int:
    """The default model's maximum iteration count (``default`` if no model is found: the
    encoder then names the problem)."""
    try:
        from medcodec.model import checkpoint

        return int(checkpoint.load_config(checkpoint.default_model_id()).max_iterations)
    except Exception:
        return default
