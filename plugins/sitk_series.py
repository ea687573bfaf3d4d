"""Series of ``.mlc`` files in SimpleITK: ``ImageSeriesReader`` and ``ImageSeriesWriter``.

Reading follows ITK 5.4's ``itk::ImageSeriesReader`` (``GenerateOutputInformation`` and
``GenerateData``) with SimpleITK's choice of output dimension:

* output dimension: the file's, unless the file has more than one sample along its last
  axis (then one more); the moving axis is the first one of size 1 after the last axis > 1;
* origin, spacing and direction come from the first file read (the last one with
  ``ReverseOrder``), padded to the output dimension;
* spacing along the moving axis is ``|last origin - first origin| / (N - 1)`` (1.0 if they
  coincide); the direction column of that axis is flipped when the slices run against it,
  or replaced by the unit slice-to-slice vector with ``ForceOrthogonalDirection`` off;
* a slice-to-slice distance different from that spacing sets the output's
  ``ITK_non_uniform_sampling_deviation`` key, and when the largest deviation over the
  spacing exceeds ``SpacingWarningRelThreshold`` a warning goes to ITK's global logger
  (``sitk.LoggerBase``), as ITK's "Non uniform sampling or missing slices detected";
* with ``MetaDataDictionaryArrayUpdate`` each file's metadata is kept, per slice.

Writing a 3-D image as a series stores each slice as a one-slice 3-D ``.mlc`` file with
its own 3-D origin, the volume's spacing and direction and the image's metadata (as ITK's
DICOM writer does with ``ITK_Origin``), so the series reads back with the volume's geometry.
"""

from __future__ import annotations

import math

import numpy as np

# ITK's Math::AlmostEquals for doubles: a few units in the last place
_ULPS = 4


def output_dimension(size) -> int:
    """SimpleITK's series output dimension for files of ``size``."""
    return len(size) if len(size) >= 3 and size[-1] == 1 else len(size) + 1


def moving_axis(size, dimension: int) -> int:
    """ITK's ``ComputeMovingDimensionIndex``: the axis the files are stacked along."""
    m = min(len(size), dimension - 1)
    while m > 0 and size[m - 1] == 1:
        m -= 1
    return m


def _padded(image, dimension):
    """(size, spacing, origin, direction as a matrix) of ``image`` in ``dimension`` axes."""
    d = image.GetDimension()
    size = tuple(image.GetSize()) + (1,) * (dimension - d)
    spacing = tuple(image.GetSpacing()) + (1.0,) * (dimension - d)
    origin = np.array(tuple(image.GetOrigin()) + (0.0,) * (dimension - d))
    direction = np.eye(dimension)
    direction[:d, :d] = np.asarray(image.GetDirection()).reshape(d, d)
    return size, spacing, origin, direction


def _almost_equal(a: float, b: float) -> bool:
    return abs(a - b) <= _ULPS * math.ulp(max(abs(a), abs(b)))


def series_geometry(first, last, count: int, dimension: int, force_orthogonal: bool = True):
    """(size, spacing, origin, direction (flat), moving axis, spacing defined) of a series
    of ``count`` files whose first and last images are given."""
    size, spacing, origin, direction = _padded(first, dimension)
    size, spacing = list(size), list(spacing)
    m = moving_axis(first.GetSize(), dimension)
    defined = False
    if count > 1:
        size[m] = count
        step = _padded(last, dimension)[2] - origin
        norm = float(np.linalg.norm(step))
        if _almost_equal(norm, 0.0):
            spacing[m] = 1.0
        else:
            spacing[m] = norm / (count - 1)
            defined = True
            if not force_orthogonal:
                direction[:, m] = step / norm
            elif float(np.dot(step, direction[:, m])) < 0:
                direction[:, m] = -direction[:, m]
    return tuple(size), tuple(spacing), tuple(origin.tolist()), tuple(direction.ravel().tolist()), m, defined


def spacing_deviation(origins, spacing: float) -> float | None:
    """Largest ``| |o_i - o_(i-1)| - spacing |`` over consecutive slices, None if all agree."""
    worst = None
    for a, b in zip(origins, origins[1:]):
        dist = float(np.linalg.norm(np.asarray(b) - np.asarray(a)))
        if not _almost_equal(dist, spacing):
            worst = max(worst or 0.0, abs(spacing - dist))
    return worst


def _warn(sitk, message: str) -> None:
    """A warning through ITK's global logger, as ``itkWarningMacro`` writes it."""
    if sitk.ProcessObject.GetGlobalWarningDisplay():
        sitk.LoggerBase.GetGlobalITKLogger().DisplayWarningText(
            f"WARNING: In medcodec_plugins/sitk_series.py\nImageSeriesReader (medcodec): {message}\n\n")


def stack_series(sitk, images, names, *, force_orthogonal=True, threshold=1e-4):
    """One image from the images of a series in reading order (see the module docstring);
    raises ``ValueError`` with ITK's message when a file's size differs."""
    first, last = images[0], images[-1]
    dimension = output_dimension(first.GetSize())
    size, spacing, origin, direction, m, defined = series_geometry(first, last, len(images), dimension,
                                                                   force_orthogonal)
    arrays = []
    for image, name in zip(images, names):
        if image.GetSize() != first.GetSize():
            raise ValueError(f"Size mismatch! The size of {name} is {image.GetSize()} and does not match "
                             f"the required size {first.GetSize()} from file {names[0]}")
        if image.GetPixelID() != first.GetPixelID():
            image = sitk.Cast(image, first.GetPixelID())
        padded = tuple(image.GetSize()) + (1,) * (dimension - image.GetDimension())
        arrays.append(sitk.GetArrayViewFromImage(image).reshape(tuple(reversed(padded))))
    axis = dimension - 1 - m
    out = sitk.GetImageFromArray(np.concatenate(arrays, axis=axis) if len(arrays) > 1 else arrays[0],
                                 isVector=False)
    assert out.GetSize() == size, (out.GetSize(), size)
    out.SetSpacing(spacing)
    out.SetOrigin(origin)
    out.SetDirection(direction)
    if defined:
        deviation = spacing_deviation([_padded(im, dimension)[2] for im in images], spacing[m])
        if deviation is not None:
            out.SetMetaData("ITK_non_uniform_sampling_deviation", f"{deviation:g}")
            if deviation / spacing[m] > threshold:
                _warn(sitk, f"Non uniform sampling or missing slices detected,  maximum nonuniformity:{deviation:g}")
    return out


def series_slices(image):
    """The slices an ``ImageSeriesWriter`` writes from a 3-D image: one-slice 3-D images
    keeping their 3-D origin and the image's metadata."""
    keys = image.GetMetaDataKeys()
    for z in range(image.GetSize()[2]):
        piece = image[:, :, z : z + 1]
        for k in keys:
            piece.SetMetaData(k, image.GetMetaData(k))
        yield piece
