"""Library API: compress numpy arrays and SimpleITK images to ``.mlc`` files and back.

    import medcodec
    stats = medcodec.compress(volume, "ct.mlc", iterations=8, geometry=geom)
    stats = medcodec.compress(volume, "ct.mlc", psnr=45)         # rate control
    volume2, header = medcodec.decompress("ct.mlc")            # all stored iterations
    preview, _ = medcodec.decompress("ct.mlc", iterations=2)   # progressive: reads less
    image = medcodec.read("ct.mlc"); medcodec.write(image, "ct2.mlc")
    medcodec.info("ct.mlc")                                    # header only, no JAX

Every encode is described by one :class:`medcodec.options.EncodeOptions` (pass one, or its
fields as keywords); an explicit coding goes to :mod:`medcodec.pipeline`, a bpp / ratio /
psnr target to :mod:`medcodec.ratecontrol`. The output keeps the input's dtype and
intensity range.
"""

from __future__ import annotations

import os

import numpy as np

from .errors import InputError
from .format import Reader, TileMap, read_image_metadata
from .io import lossy_flags
from .io.images import Geometry
from .options import EncodeOptions
from .pipeline.decode import Progress, decode_slices, decompress, geometry_of
from .pipeline.precision import PRECISIONS, decode_precision
from .pipeline.stats import EncodeStats

__all__ = ["EncodeOptions", "EncodeStats", "PRECISIONS", "compress", "decode_precision", "decode_slices",
           "decode_to_dicom", "decompress", "geometry_of", "info", "read", "read_image_metadata", "write"]


def compress(array: np.ndarray, path: str | os.PathLike, options: EncodeOptions | None = None, *,
             geometry: Geometry | None = None, metadata: dict[str, str] | None = None,
             overwrite: bool = False, progress: Progress | None = None, workers: int | None = None,
             tiles: TileMap | None = None, transform_step: float | None = None, **modes) -> EncodeStats:
    """Encode a 2D/3D/4D grayscale array (numpy axis order) into a ``.mlc`` file.

    The mode comes from ``options`` and/or keywords naming its fields: ``iterations`` K
    (default 8) learned iterations, each adding up to ``bits / factor^2`` bits per pixel;
    ``max_error`` E adds the bounded-error layer (integer images: every voxel within E, 0 =
    lossless, verified here by decoding; no learned iterations under it by default, and
    3-D volumes then predict each slice from the one before unless ``interslice=False``); ``bpp`` / ``ratio`` /
    ``psnr`` let rate control choose (with ``roi``, ``background_weight``, ``adaptive``,
    ``wavelet``, ``interslice``); ``model_id`` picks the checkpoint. Explicit codings may also give ``tiles``
    (per-tile iteration counts, :mod:`medcodec.ratecontrol.tiles`) or ``transform_step``
    (the wavelet layer's step, pixel units). ``workers``: threads entropy coding the
    slices (None: one per core or ``$MEDCODEC_THREADS``; 1: this thread). Returns measured
    :class:`EncodeStats`.
    """
    options = EncodeOptions.from_kwargs(options, **modes)
    common = dict(geometry=geometry, metadata=metadata, overwrite=overwrite, progress=progress, workers=workers)
    if options.target is not None:
        if tiles is not None or transform_step is not None:
            name = options.target[0]
            raise InputError(f"a {name} target chooses tiles and the wavelet step itself; give neither")
        from .ratecontrol import encode_to_target

        return encode_to_target(array, path, options, **common)
    from .pipeline.encode import compress as encode

    return encode(array, path, iterations=options.base_iterations, max_error=options.max_error,
                  model_id=options.model_id, tiles=tiles, transform_step=transform_step,
                  key_interval=_key_interval(array, options, tiles, transform_step), **common)


def _key_interval(array, options: EncodeOptions, tiles, transform_step) -> int | None:
    """Inter-slice prediction for an explicit bounded-error encode of a volume over no
    learned iterations (lossless / max_error by default), unless ``interslice=False``."""
    if options.max_error is None or options.base_iterations != 0 or tiles is not None \
            or transform_step is not None or not options.interslice:
        return None
    from .model import checkpoint
    from .pipeline.encode import default_key_interval

    return default_key_interval(np.asarray(array), checkpoint.load(options.model_id).config.factor)


def write(image, path: str | os.PathLike, options: EncodeOptions | None = None, **kwargs) -> EncodeStats:
    """Encode a SimpleITK image (geometry and metadata kept); arguments as :func:`compress`."""
    from .io.images import from_sitk

    array, geometry, metadata = from_sitk(image)
    metadata.update(kwargs.pop("metadata", None) or {})
    return compress(array, path, options, geometry=geometry, metadata=metadata, **kwargs)


def read(path: str | os.PathLike, iterations: int | None = None, progress: Progress | None = None,
         precision: str = "auto", workers: int | None = None):
    """Decode a ``.mlc`` file to a SimpleITK image with its geometry and metadata, the DICOM
    lossy-compression attributes included (``0028|2110`` "01" unless lossless)."""
    from .io.images import to_sitk

    array, header = decompress(path, iterations, progress, precision, workers)
    return to_sitk(array, geometry_of(header), read_image_metadata(path, iterations))


def decode_to_dicom(path: str | os.PathLike, folder: str | os.PathLike, dicom=None, *,
                    iterations: int | None = None, overwrite: bool = False, progress: Progress | None = None,
                    precision: str = "auto", workers: int | None = None) -> list:
    """Decode a ``.mlc`` file to a DICOM series in ``folder`` (one file per slice): the
    source's tags, new UIDs, lossy-compression attributes; ``dicom`` a
    :class:`medcodec.io.dicom.DicomOptions` (transfer syntax, tags). Returns the file paths."""
    from .io.dicom import DicomOptions, check_target, write_series

    check_target(folder, overwrite)  # before the work, not after it
    array, header = decompress(path, iterations, progress, precision, workers)
    return write_series(array, geometry_of(header), read_image_metadata(path, iterations), folder,
                        dicom or DicomOptions(), overwrite=overwrite)


def info(path: str | os.PathLike) -> dict:
    """Header facts as a JSON-ready dict, without decoding (and without importing JAX)."""
    with Reader(path) as r:
        h, max_error, wavelet, tiles, prediction = r.header, r.max_error, r.wavelet, r.tiles, r.prediction
        metadata = r.image_metadata()
    nbytes = os.path.getsize(path)
    voxels = int(np.prod(h.size))
    return {
        "path": str(path), "format_version": "%d.%d" % h.version, "model_id": h.model_id,
        "size": list(h.size), "spacing": list(h.spacing), "origin": list(h.origin),
        "direction": list(h.direction), "pixel_type": h.pixel_type, "components": h.components,
        "window": list(h.window), "slices": h.image_slices, "iterations": h.iterations,
        "pieces_per_slice": None if h.grid is None else list(h.grid), "adaptive_tiles": tiles is not None,
        # learned iterations really used per tile (min, max): 0 everywhere = the residual layer alone
        "tile_iterations": None if tiles is None else [min(int(tiles.counts.min(initial=0)), h.iterations),
                                                      min(int(tiles.counts.max(initial=0)), h.iterations)],
        "residual_layer": ("bounded-error" if max_error is not None else "wavelet" if wavelet is not None else None),
        "max_error": max_error, "wavelet_step": None if wavelet is None else wavelet[0],
        # inter-slice prediction of the residual layer: key interval, slices predicted from the one before
        "interslice": None if prediction is None else {"key_interval": prediction.key_interval,
                                                       "inter_slices": int(prediction.modes.sum())},
        "bytes": nbytes, "bpp": 8.0 * nbytes / voxels,
        "ratio": voxels * np.dtype(h.pixel_type).itemsize / nbytes,
        # what a DICOM reader of the decoded image is told (PS3.3 C.7.6.1.1.5)
        "lossy_compression": lossy_flags.summary(metadata),
        "metadata": metadata,
    }

