"""The DICOM Lossy Image Compression attributes of an image decoded from a ``.mlc`` file.

A PACS, a viewer or a regulator must be able to tell that an image went through lossy
compression (DICOM PS3.3 C.7.6.1.1.5): (0028,2110) Lossy Image Compression "00"/"01",
(0028,2112) the ratio(s) and (0028,2114) the method(s), one value per lossy step, in order.
They are derived when a file is read, never stored: the ratio is the raw image bytes over
the bytes of the ``.mlc`` file, and a source that was already lossy (its stored metadata
says "01") keeps its earlier steps, with this file's step appended. Keys are SimpleITK's
``gggg|eeee``. numpy-free and JAX-free: the SimpleITK hook and ``info`` use it.
"""

from __future__ import annotations

LOSSY = "0028|2110"
RATIO = "0028|2112"
METHOD = "0028|2114"
KEYS = (LOSSY, RATIO, METHOD)
# DICOM has no defined term for a learned codec; a CS value (<= 16 chars, A-Z 0-9 _ space)
METHOD_NAME = "MEDCODEC"
NOTES = "ITK_FileNotes"
NOTE_PREFIX = "medcodec: "


def _values(text: str | None) -> list[str]:
    return [v.strip() for v in (text or "").split("\\") if v.strip()]


def ratio_text(ratio: float) -> str:
    """A DS value (<= 16 characters): the ratio to 2 decimals, e.g. '12.37'."""
    return f"{ratio:.2f}" if ratio < 1e12 else f"{ratio:.6e}"


def lossy_flags(stored: dict[str, str], lossless: bool, ratio: float) -> dict[str, str]:
    """The three attributes for an image whose source metadata is ``stored`` and which this
    file coded ``lossless`` or not, at ``ratio`` (raw bytes / file bytes).

    An earlier lossy step (``stored`` says "01") is kept: once lossy, always "01".
    """
    earlier = stored.get(LOSSY, "").strip() == "01"
    ratios = _values(stored.get(RATIO)) if earlier else []
    methods = _values(stored.get(METHOD)) if earlier else []
    if lossless and not earlier:
        return {LOSSY: "00"}
    if not lossless:
        ratios.append(ratio_text(ratio))
        methods.append(METHOD_NAME)
    flags = {LOSSY: "01"}
    if ratios:
        flags[RATIO] = "\\".join(ratios)
    if methods:
        flags[METHOD] = "\\".join(methods)
    return flags


def image_metadata(stored: dict[str, str], lossless: bool, ratio: float) -> dict[str, str]:
    """``stored`` with the lossy-compression attributes of this decode put in their place.

    A lossy image also gets a file note (``ITK_FileNotes``: NIfTI's 80-byte description
    field, a plain field in NRRD and MHA) saying so, ahead of the source's own note.
    """
    out = {k: v for k, v in stored.items() if k not in KEYS}
    flags = lossy_flags(stored, lossless, ratio)
    out.update(flags)
    if flags[LOSSY] == "01":
        own = stored.get(NOTES, "")
        if own.startswith(NOTE_PREFIX):  # an earlier medcodec step's note: the flags say it all
            own = ""
        note = NOTE_PREFIX + summary(flags) + (f"; {own}" if own else "")
        out[NOTES] = note[:79]
    return out


def summary(flags: dict[str, str]) -> str:
    """One line for people: 'lossless', or 'lossy (ratio 12.37:1, MEDCODEC)'."""
    if flags.get(LOSSY) != "01":
        return "lossless"
    steps = [f"{r}:1 {m}" for r, m in zip(_values(flags.get(RATIO)), _values(flags.get(METHOD)))]
    return "lossy (" + ", then ".join(steps) + ")" if steps else "lossy"
