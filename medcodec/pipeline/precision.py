"""The decoder network's compute precision for a file (the precision policy)."""

from __future__ import annotations

from ..errors import InputError

PRECISIONS = ("auto", "float32", "bfloat16")


def decode_precision(precision: str, layered: bool, integer: bool = False) -> str | None:
    """The decoder's compute dtype for ``precision`` ("auto", "float32" or "bfloat16").

    "auto" is bfloat16 on a GPU/TPU and float32 on a CPU: bf16 decodes 1.4x faster on an
    H100 (327 vs 236 MP/s) for 0.035 dB (docs/reproducibility.md), while on a CPU float32
    is the fast path. A file whose residual layer will be applied (``layered``) always
    decodes in float32, the precision its layer was computed against; bfloat16 is refused
    for it (a bounded-error file would fail its check).
    An ``integer`` model (config ``quant``, :mod:`medcodec.model.integer`) has no precision
    to choose: its decoder computes the same integers on every backend and under every
    setting (its GEMMs are exact in float32, TF32 and bfloat16 alike), so every value of
    ``precision`` gives the same image and nothing is refused; None is returned (the
    model's own GEMM form, int8 x int8 -> int32).
    """
    if precision not in PRECISIONS:
        raise InputError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    if integer:
        return None
    if layered:
        if precision == "bfloat16":
            raise InputError("this file's residual layer refines the encoder's float32 reconstruction; "
                             "decode it with precision 'float32' or 'auto' (or fewer iterations, "
                             "which skip the layer)")
        return "float32"
    if precision == "auto":
        from ..model.runtime import accelerated

        return "bfloat16" if accelerated() else "float32"
    return precision
