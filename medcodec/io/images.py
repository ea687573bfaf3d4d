"""Reading and writing ordinary image files through SimpleITK, safely.

Inputs are anything SimpleITK reads (NIfTI, NRRD, MHA/MHD, single DICOM files) or a folder
holding a DICOM series; outputs are written to a temporary file with the same extension
and renamed, so a failed write never leaves a partial file and never damages an existing one.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import numpy as np

from ..errors import ReadError, UnsupportedPixelTypeError, WriteError
from .atomic import check_output, move_into_place, temporary_sibling


@dataclasses.dataclass(frozen=True)
class Geometry:
    """Physical geometry in SimpleITK order (x, y, z, ...): spacing, origin, row-major direction."""

    spacing: tuple[float, ...]
    origin: tuple[float, ...]
    direction: tuple[float, ...]

    @classmethod
    def identity(cls, ndim: int) -> "Geometry":
        return cls((1.0,) * ndim, (0.0,) * ndim, tuple(np.eye(ndim).ravel().tolist()))


def _sitk():
    import SimpleITK as sitk

    return sitk


def from_sitk(image) -> tuple[np.ndarray, Geometry, dict[str, str]]:
    """SimpleITK image -> (numpy array (Z, Y, X) order, geometry, metadata dictionary)."""
    # checked before anything else touches the image: metadata access on label maps can abort
    kind = image.GetPixelIDTypeAsString()
    if "label" in kind.lower():
        raise UnsupportedPixelTypeError(f"{kind} images (label maps) cannot be coded lossily; "
                                        "store segmentations in a lossless format such as .nrrd")
    if image.GetNumberOfComponentsPerPixel() != 1 or "complex" in kind.lower():
        raise UnsupportedPixelTypeError(
            f"{kind} images ({image.GetNumberOfComponentsPerPixel()} components per pixel) are not "
            "supported; medcodec codes scalar grayscale images only (split vector images into channels)")
    arr = _sitk().GetArrayFromImage(image)
    geom = Geometry(tuple(image.GetSpacing()), tuple(image.GetOrigin()), tuple(image.GetDirection()))
    meta = {k: image.GetMetaData(k) for k in image.GetMetaDataKeys()}
    # ITK's placeholders for values it cannot print (e.g. NIfTI's ITK_original_direction)
    meta = {k: v for k, v in meta.items() if not v.startswith("[UNKNOWN_PRINT_CHARACTERISTICS]")}
    return arr, geom, meta


def to_sitk(array: np.ndarray, geometry: Geometry | None, metadata: dict[str, str] | None = None):
    """numpy array + geometry + metadata -> SimpleITK image (the inverse of :func:`from_sitk`)."""
    sitk = _sitk()
    image = sitk.GetImageFromArray(array, isVector=False)
    if geometry is not None:
        image.SetSpacing(geometry.spacing)
        image.SetOrigin(geometry.origin)
        image.SetDirection(geometry.direction)
    for k, v in (metadata or {}).items():
        image.SetMetaData(k, v)
    return image


def read_image(path: str | os.PathLike, series_uid: str | None = None):
    """Read a file, or a DICOM series from a folder, as a SimpleITK image."""
    sitk = _sitk()
    path = Path(path)
    if not path.exists():
        raise ReadError(f"{path} does not exist")
    try:
        if path.is_dir():
            uids = sitk.ImageSeriesReader.GetGDCMSeriesIDs(str(path))
            if not uids:
                raise ReadError(f"{path} is a folder without a DICOM series")
            if series_uid is None and len(uids) > 1:
                raise ReadError(f"{path} holds {len(uids)} DICOM series; pick one with --series UID "
                                f"({', '.join(uids)})")
            uid = series_uid or uids[0]
            if uid not in uids:
                raise ReadError(f"series {uid} is not in {path}")
            reader = sitk.ImageSeriesReader()
            reader.SetFileNames(sitk.ImageSeriesReader.GetGDCMSeriesFileNames(str(path), uid))
            reader.MetaDataDictionaryArrayUpdateOn()
            reader.LoadPrivateTagsOff()
            image = reader.Execute()
            first = {k: reader.GetMetaData(0, k) for k in reader.GetMetaDataKeys(0)}
            for k, v in first.items():
                if _printable(v):
                    image.SetMetaData(k, v)
            return image
        return sitk.ReadImage(str(path))
    except RuntimeError as e:
        raise ReadError(f"cannot read {path}: {_first_line(e)}") from e


def _printable(v: str) -> bool:
    return v.isprintable() and len(v) < 4096


def _first_line(e: Exception) -> str:
    lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
    # ITK messages put the useful sentence last, after file/line locations
    return lines[-1] if lines else type(e).__name__


def write_image(image, path: str | os.PathLike, overwrite: bool = False, compress: bool = True) -> None:
    """Write a SimpleITK image atomically; refuses to replace ``path`` unless ``overwrite``."""
    sitk = _sitk()
    path = check_output(path, overwrite)
    tmp = temporary_sibling(path)
    try:
        sitk.WriteImage(image, str(tmp), compress)
        move_into_place(tmp, path, overwrite)
    except RuntimeError as e:
        raise WriteError(f"cannot write {path}: {_first_line(e)} (is the extension one SimpleITK writes?)") from e
    finally:
        if tmp.exists():
            tmp.unlink()

