"""Regions that matter: a body mask, and per code cell weights for rate-distortion.

Rate control with a region of interest gives tiles inside the region a stricter target
than the background: each code cell's squared error is weighted by the fraction of its
pixels inside the region plus ``background_weight`` times the fraction outside, so a
background error counts ``1 / background_weight`` times less (0.1 = 10 dB looser), and a
PSNR target is measured inside the region.

:func:`body_mask` finds the patient automatically: CT (intensities down to -1000 HU or
below) is thresholded at -500 HU, other images (MR: a large dark background peak) with the
triangle method; only the largest connected component is kept (the scanner table is
usually separate), then holes are filled and the mask dilated by 2 pixels, slice by slice.
"""

from __future__ import annotations

import os

import numpy as np

from .. import prep
from ..errors import InputError
from ..options import DEFAULT_BACKGROUND_WEIGHT
from ..prep import block_sums

CT_AIR_HU = -500.0


def body_mask(array: np.ndarray) -> np.ndarray:
    """Boolean mask of the patient's body, same shape as ``array`` (2D, 3D or 4D)."""
    import SimpleITK as sitk

    a = np.asarray(array)
    stack = a.reshape((-1,) + a.shape[-2:]) if a.ndim > 3 else a
    img = sitk.GetImageFromArray(stack.astype(np.float32))
    if float(a.min()) <= -900 and float(a.max()) > 0:  # CT in Hounsfield units
        fg = sitk.BinaryThreshold(img, CT_AIR_HU, 1e30, 1, 0)
    else:  # MR and others: a large dark background peak; the triangle method finds its edge
        fg = sitk.TriangleThreshold(img, 0, 1)
    labels = sitk.RelabelComponent(sitk.ConnectedComponent(fg), sortByObjectSize=True)
    largest = sitk.GetArrayFromImage(sitk.BinaryThreshold(labels, 1, 1, 1, 0))
    planes = largest.reshape((-1,) + largest.shape[-2:])
    filled = np.stack([sitk.GetArrayFromImage(sitk.BinaryDilate(sitk.BinaryFillhole(sitk.GetImageFromArray(p)), [2, 2]))
                       for p in planes])  # holes filled slice by slice (in 3D they open to the outside)
    return filled.astype(bool).reshape(a.shape)


def check_mask(mask, shape: tuple[int, ...]) -> np.ndarray:
    """A caller's region (label image: nonzero = inside) as a bool array of ``shape``."""
    m = np.asarray(mask)
    if m.shape != tuple(shape):
        raise InputError(f"region mask has shape {m.shape}, the image {tuple(shape)}: give a label "
                         "image on the same grid")
    m = m != 0
    if not m.any():
        raise InputError("region mask is empty: nothing would be inside the region of interest")
    return m


def cell_weights(mask: np.ndarray, factor: int, grid: tuple[int, int],
                 background_weight: float = DEFAULT_BACKGROUND_WEIGHT) -> np.ndarray:
    """Per code cell weights (slices, grid h, grid w): inside fraction + background_weight x
    outside fraction, over the cell's real pixels (cells with none get 0)."""
    if not 0 <= background_weight <= 1:
        raise InputError(f"background weight must be within 0..1, got {background_weight}")
    m = mask.reshape((-1,) + mask.shape[-2:])
    n_in, n_real = block_sums(m, factor), block_sums(np.ones(m.shape[1:]), factor)
    if n_real.shape != tuple(grid):
        raise InputError(f"region of {m.shape[1:]} pixels does not give the {grid} code cells of the image")
    with np.errstate(invalid="ignore", divide="ignore"):
        frac_in = np.where(n_real > 0, n_in / np.maximum(n_real, 1), 0.0)
    return np.where(n_real > 0, frac_in + background_weight * (1 - frac_in), 0.0)


def region_mask(roi, array: np.ndarray) -> np.ndarray | None:
    """The caller's region (None, "auto" = the body, a label image or the path of one) as a
    bool array of the image's shape; the options were validated already (:mod:`medcodec.options`)."""
    if roi is None:
        return None
    if isinstance(roi, str) and roi == "auto":
        return body_mask(array)
    if isinstance(roi, (str, os.PathLike)):
        from ..io.images import from_sitk, read_image

        roi = from_sitk(read_image(roi))[0]
    return check_mask(roi, array.shape)


def region_weights(mask: np.ndarray, factor: int, grid: tuple[int, int], background_weight: float) -> np.ndarray:
    """Per code cell weights of the coded slices (pieces, if the slices are cut) on a code
    grid of ``grid`` cells."""
    planes = mask.reshape((-1,) + mask.shape[-2:])
    pieces = prep.piece_grid(planes.shape[1], planes.shape[2], factor)
    planes = planes if pieces is None else prep.to_pieces(planes, *pieces)
    return cell_weights(planes, factor, grid, background_weight)
