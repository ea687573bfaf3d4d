"""MONAI reader: ``LoadImage(reader=MedcodecReader())`` loads ``.mlc`` files.

Follows MONAI's ``ImageReader`` contract (``verify_suffix``, ``read``, ``get_data``) and, like
MONAI's ITK reader, returns arrays in (x, y, z) order with a RAS ``affine``. It subclasses
``monai.data.ImageReader`` when MONAI is installed and works without it (plain object).
"""

from __future__ import annotations

import os
from typing import Sequence

import numpy as np

try:  # optional dependency
    from monai.data import ImageReader as _Base
except ImportError:  # pragma: no cover - depends on the environment
    _Base = object

_LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])


def _affine(header) -> np.ndarray:
    """4x4 voxel-to-world matrix (LPS, ITK convention) of the first three axes."""
    n = min(header.ndim, 3)
    d = np.asarray(header.direction, float).reshape(header.ndim, header.ndim)[:n, :n]
    aff = np.eye(4)
    aff[:n, :n] = d * np.asarray(header.spacing[:n], float)
    aff[:n, 3] = header.origin[:n]
    return aff


class MedcodecReader(_Base):
    """Reads ``.mlc`` files for MONAI transforms (``LoadImage``/``LoadImaged``)."""

    def __init__(self, iterations: int | None = None, affine_lps_to_ras: bool = True, **kwargs):
        if _Base is not object:
            super().__init__()
        self.iterations = iterations
        self.affine_lps_to_ras = affine_lps_to_ras
        self.kwargs = kwargs

    def verify_suffix(self, filename: str | os.PathLike | Sequence) -> bool:
        names = [filename] if isinstance(filename, (str, os.PathLike)) else list(filename)
        return bool(names) and all(os.fspath(n).lower().endswith(".mlc") for n in names)

    def read(self, data, **kwargs):
        """Decode one path or a list of paths; returns one image or a list (array, header)."""
        from medcodec import api

        paths = [data] if isinstance(data, (str, os.PathLike)) else list(data)
        images = [(*api.decompress(p, iterations=kwargs.get("iterations", self.iterations)), os.fspath(p))
                  for p in paths]
        return images[0] if len(images) == 1 else images

    def get_data(self, img):
        """(array in (x, y, z) order, metadata dict) as MONAI expects; lists are stacked
        along a new first (channel) axis."""
        imgs = img if isinstance(img, list) else [img]
        arrays, metas = [], []
        for array, header, path in imgs:
            aff = _affine(header)
            if self.affine_lps_to_ras:
                aff = _LPS_TO_RAS @ aff
            arrays.append(np.ascontiguousarray(array.T))
            metas.append({"affine": aff, "original_affine": aff.copy(),
                          "spatial_shape": np.asarray(header.size[:3]), "original_channel_dim": "no_channel",
                          "filename_or_obj": path, "spacing": np.asarray(header.spacing),
                          **header.metadata})
        if len(arrays) == 1:
            return arrays[0], metas[0]
        meta = dict(metas[0], original_channel_dim=0)
        return np.stack(arrays), meta
