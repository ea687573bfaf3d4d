"""``.mlc`` files inside SimpleITK: ReadImage, WriteImage and the reader/writer classes.

SimpleITK's readers are compiled ITK ImageIO classes and cannot be extended from Python, so
this hook subclasses ``ImageFileReader``, ``ImageFileWriter``, ``ImageSeriesReader`` and
``ImageSeriesWriter`` and puts the subclasses in the ``SimpleITK`` (and ``SimpleITK.extra``)
namespace. SimpleITK's own ``ReadImage``/``WriteImage`` build those classes by name, so they
dispatch too. A file is ``.mlc`` when its name ends so, when it starts with the ``.mlc``
magic bytes, or when ``imageIO="MedcodecImageIO"`` is given; every other file, and every
call naming another ImageIO, goes to SimpleITK untouched (a wrong ImageIO raises there).

Rate or quality when writing, from ``compressor`` (comma-separated, optionally prefixed
``medcodec:``): ``iterations=K``, ``bpp=B``, ``ratio=R``, ``psnr=DB``, ``max_error=E`` (with
``iterations=K`` for its base), ``lossless``; with bpp/ratio/psnr also ``roi=auto`` (body
mask gets the target, background less), ``background_weight=W``, ``uniform`` (no
adaptive tiles), ``no_wavelet`` (no wavelet layer) and ``no_interslice`` (volumes: every
slice coded alone). Another format's compressor name
(``gzip``, ``DEFLATE``, ...) is tolerated: the default coding is used, and a name no ITK
format knows warns, as ITK does. Without a rate or quality option the iteration count is
``compressionLevel=K``, clamped to 1..model maximum as ITK clamps levels, then the environment
variable ``MEDCODEC_ITERATIONS``, then the default (:mod:`medcodec.options`; a bounded-error
write takes its base from ``iterations=K`` or ``compressionLevel`` only). ``useCompression``
is ignored (``.mlc`` is always compressed). Errors are :class:`MedcodecSitkError`, a
``RuntimeError`` as SimpleITK users expect (and a ``MedcodecError``).

JAX is imported only when pixels are decoded or encoded; ``ReadImageInformation`` reads the
header alone, afresh each time.
"""

from __future__ import annotations

import functools
import importlib
import os

from medcodec.errors import MedcodecError

from .sitk_events import EventsMixin
from .sitk_options import ITK_COMPRESSORS, ForeignCompressorWarning  # noqa: F401  (public here too)
from . import sitk_options

IMAGE_IO = "MedcodecImageIO"
_PATCHED = ("ImageFileReader", "ImageFileWriter", "ImageSeriesReader", "ImageSeriesWriter")
_MAGIC = b"\x89MLC\r\n\x1a\n"  # medcodec.format.spec.MAGIC, kept here so probing imports nothing
_PIXEL_IDS = {"uint8": "sitkUInt8", "int8": "sitkInt8", "uint16": "sitkUInt16", "int16": "sitkInt16",
              "uint32": "sitkUInt32", "int32": "sitkInt32", "float32": "sitkFloat32",
              "float64": "sitkFloat64"}


class MedcodecSitkError(MedcodecError, RuntimeError):
    """A medcodec error raised through SimpleITK's API."""


def is_mlc(name) -> bool:
    """Whether ``name`` ends in ``.mlc``."""
    try:
        return os.fspath(name).lower().endswith(".mlc")
    except TypeError:
        return False


def has_mlc_magic(name) -> bool:
    """Whether the file ``name`` exists and starts with the ``.mlc`` magic bytes."""
    try:
        with open(name, "rb") as f:
            return f.read(len(_MAGIC)) == _MAGIC
    except (OSError, TypeError, ValueError):
        return False


def _sitk_errors(fn):
    """Re-raise MedcodecError as MedcodecSitkError (a RuntimeError) with the same message."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except MedcodecSitkError:
            raise
        except MedcodecError as e:
            raise MedcodecSitkError(str(e)) from e

    return wrapper


def write_options(compressor: str = "", level: int = -1):
    """The :class:`medcodec.options.EncodeOptions` of a ``.mlc`` write from SimpleITK's
    compression options (:func:`medcodec_plugins.sitk_options.write_options`)."""
    try:
        return sitk_options.write_options(compressor, level)
    except MedcodecError as e:
        raise MedcodecSitkError(str(e)) from e


def _physical_point(header, index) -> tuple[float, ...]:
    n = header.ndim
    d = [header.direction[i * n : (i + 1) * n] for i in range(n)]
    scaled = [header.spacing[j] * index[j] for j in range(n)]
    return tuple(header.origin[i] + sum(d[i][j] * scaled[j] for j in range(n)) for i in range(n))


def _slice_progress(report, total: int):
    """An api progress callback (slices done) reporting fractions to ``report``."""
    if report is None:
        return None
    done = [0.0]

    def progress(n):
        done[0] += n
        report(done[0] / max(total, 1))

    return progress


def image_header(path):
    """The header of a ``.mlc`` file with the metadata of the image decoded from it: the stored
    metadata and the DICOM lossy-compression attributes (``0028|2110`` ...), as ``Execute``
    returns them."""
    import dataclasses

    from medcodec.format import Reader

    with Reader(path) as r:
        return dataclasses.replace(r.header, metadata=r.image_metadata())


def read_region(sitk, path, extract_size=(), extract_index=(), header=None, report=None):
    """Decode a ``.mlc`` file (or only the slices an ITK extract region needs) to an image
    with the file's metadata; ``report(fraction)`` gets the progress."""
    from medcodec import api
    from medcodec.io.images import Geometry, to_sitk

    h = header or image_header(path)
    if not extract_size:
        return api.read(path, progress=_slice_progress(report, h.image_slices))
    n = h.ndim
    if len(extract_size) != n or (extract_index and len(extract_index) != n):
        raise MedcodecSitkError(f"extract region must have {n} entries for this {n}-D image")
    index = list(extract_index) or [0] * n
    span = [max(s, 1) for s in extract_size]
    for d in range(n):
        if index[d] < 0 or index[d] + span[d] > h.size[d]:
            raise MedcodecSitkError(f"extract region exceeds the image size {h.size} along axis {d}")
    # slices are the flattened axes beyond x, y (z, then t)
    nz = h.size[2] if n > 2 else 1
    zs = range(index[2], index[2] + span[2]) if n > 2 else range(1)
    ts = range(index[3], index[3] + span[3]) if n > 3 else range(1)
    wanted = [t * nz + z for t in ts for z in zs]
    arr, _ = api.decode_slices(path, slices=wanted, progress=_slice_progress(report, len(wanted)))
    shape = ((len(ts),) if n > 3 else ()) + ((len(zs),) if n > 2 else ()) + (h.size[1], h.size[0])
    start = [0, 0] + index[2:]
    geom = Geometry(tuple(h.spacing), _physical_point(h, start), tuple(h.direction))
    sub = to_sitk(arr.reshape(shape), geom, h.metadata)
    out = sitk.Extract(sub, [int(s) for s in extract_size], [index[0], index[1]] + [0] * (n - 2))
    for k, v in h.metadata.items():  # Extract drops the dictionary; ITK's reader keeps it
        out.SetMetaData(k, v)
    return out


class _IOMixin(EventsMixin):
    """What the hook's four classes share: the ImageIO choice and its registry, events."""

    _base = None

    def __init__(self, *args):
        super().__init__(*args)
        self._mlc_forced = False

    def SetImageIO(self, imageio):
        self._mlc_forced = imageio == IMAGE_IO
        super().SetImageIO("" if self._mlc_forced else imageio)

    def GetImageIO(self):
        return IMAGE_IO if self._mlc_forced else super().GetImageIO()

    def GetRegisteredImageIOs(self):
        return tuple(super().GetRegisteredImageIOs()) + (IMAGE_IO,)

    def _wants_mlc(self, name, probe: bool = True) -> bool:
        """``imageIO="MedcodecImageIO"``, or no ImageIO named and a ``.mlc`` file (by name,
        or by content when ``probe``)."""
        if self._mlc_forced:
            return True
        if super().GetImageIO():
            return False  # another ImageIO named: SimpleITK's own answer, errors included
        return is_mlc(name) or (probe and has_mlc_magic(name))


def _image_io_from_file_name(base, fileName) -> str:
    if is_mlc(fileName):
        return IMAGE_IO
    return base.GetImageIOFromFileName(fileName) or (IMAGE_IO if has_mlc_magic(fileName) else "")


class _ReaderMixin(_IOMixin):
    """The ``.mlc`` half of ``sitk.ImageFileReader`` (header-only information too); every
    other file goes to SimpleITK's own class (``super()``). Information getters answer from
    the last ``ReadImageInformation``/``Execute``, as SimpleITK's do."""

    def __init__(self, *args):
        super().__init__(*args)
        self._mlc_header = None  # the last .mlc header read; None: SimpleITK's answers

    @_sitk_errors
    def _read_header(self):
        self._mlc_header = None
        self._mlc_header = image_header(self.GetFileName())
        return self._mlc_header

    def _mlc_or(self, facts, fallback: str, *args):
        """``facts(header)`` after a ``.mlc`` read, else SimpleITK's ``fallback`` method."""
        h = self._mlc_header
        return facts(h) if h is not None else getattr(super(), fallback)(*args)

    def GetImageIO(self):
        io = super().GetImageIO()
        return IMAGE_IO if not io and self._mlc_header is not None else io

    @classmethod
    def GetImageIOFromFileName(cls, fileName):
        return _image_io_from_file_name(cls._base, fileName)

    def ReadImageInformation(self):
        if not self._wants_mlc(self.GetFileName()):
            self._mlc_header = None
            return super().ReadImageInformation()
        self._read_header()

    def GetSize(self):
        return self._mlc_or(lambda h: tuple(h.size), "GetSize")

    def GetSpacing(self):
        return self._mlc_or(lambda h: tuple(h.spacing), "GetSpacing")

    def GetOrigin(self):
        return self._mlc_or(lambda h: tuple(h.origin), "GetOrigin")

    def GetDirection(self):
        return self._mlc_or(lambda h: tuple(h.direction), "GetDirection")

    def GetDimension(self):
        return self._mlc_or(lambda h: h.ndim, "GetDimension")

    def GetNumberOfComponents(self):
        return self._mlc_or(lambda h: h.components, "GetNumberOfComponents")

    def GetPixelID(self):
        return self._mlc_or(lambda h: getattr(self._sitk, _PIXEL_IDS[h.pixel_type]), "GetPixelID")

    def GetPixelIDValue(self):
        return self._mlc_or(lambda h: getattr(self._sitk, _PIXEL_IDS[h.pixel_type]), "GetPixelIDValue")

    def GetMetaDataKeys(self):
        return self._mlc_or(lambda h: tuple(h.metadata), "GetMetaDataKeys")

    def HasMetaDataKey(self, key):
        return self._mlc_or(lambda h: key in h.metadata, "HasMetaDataKey", key)

    def GetMetaData(self, key):
        if self._mlc_header is None:
            return super().GetMetaData(key)
        try:
            return self._mlc_header.metadata[key]
        except KeyError:
            raise MedcodecSitkError(f"no metadata key {key!r} in {self.GetFileName()}") from None

    @_sitk_errors
    def Execute(self):
        name = self.GetFileName()
        if not self._wants_mlc(name):
            self._mlc_header = None
            self._native()
            return super().Execute()
        sitk = self._sitk
        with self._mlc_events() as report:
            header = self._read_header()
            image = read_region(sitk, name, tuple(self.GetExtractSize()), tuple(self.GetExtractIndex()),
                                header, report)
            if self.GetOutputPixelType() != sitk.sitkUnknown:
                image = sitk.Cast(image, self.GetOutputPixelType())
        return image


class _WriterMixin(_IOMixin):
    """``sitk.ImageFileWriter`` that also writes ``.mlc`` (atomically)."""

    @_sitk_errors
    def Execute(self, image, *args):
        name = args[0] if args else self.GetFileName()
        if not self._wants_mlc(name, probe=False):
            self._native()
            return super().Execute(image, *args)
        level = args[2] if len(args) > 2 else self.GetCompressionLevel()
        options = write_options(self.GetCompressor(), level)
        with self._mlc_events() as report:
            write_mlc(image, name, options, report)


class _SeriesReaderMixin(_IOMixin):
    """``sitk.ImageSeriesReader`` that also reads lists holding ``.mlc`` files, with ITK's
    geometry rules (:mod:`medcodec_plugins.sitk_series`) and per-slice metadata."""

    def __init__(self, *args):
        super().__init__(*args)
        self._mlc_dicts = None  # after a .mlc read: per-slice metadata (list) or False (not kept)

    @classmethod
    def GetImageIOFromFileName(cls, fileName):
        return _image_io_from_file_name(cls._base, fileName)

    def _slice_dict(self, index):
        if self._mlc_dicts is False:
            raise MedcodecSitkError("no per-slice metadata: call MetaDataDictionaryArrayUpdateOn() "
                                    "before Execute()")
        if not 0 <= index < len(self._mlc_dicts):
            raise MedcodecSitkError(f"slice {index} is out of range: the series has {len(self._mlc_dicts)} files")
        return self._mlc_dicts[index]

    def GetMetaDataKeys(self, index):
        if self._mlc_dicts is None:
            return super().GetMetaDataKeys(index)
        return tuple(self._slice_dict(index))

    def HasMetaDataKey(self, index, key):
        if self._mlc_dicts is None:
            return super().HasMetaDataKey(index, key)
        return key in self._slice_dict(index)

    def GetMetaData(self, index, key):
        if self._mlc_dicts is None:
            return super().GetMetaData(index, key)
        try:
            return self._slice_dict(index)[key]
        except KeyError:
            raise MedcodecSitkError(f"no metadata key {key!r} in slice {index}") from None

    @_sitk_errors
    def Execute(self):
        from . import sitk_series

        names = list(self.GetFileNames())
        if not names or not any(self._wants_mlc(n) for n in names):
            self._mlc_dicts = None
            self._native()
            return super().Execute()
        sitk = self._sitk
        order = names[::-1] if self.GetReverseOrder() else names
        images, dicts = [], []
        with self._mlc_events() as report:
            for i, name in enumerate(order):
                reader = sitk.ImageFileReader()
                reader.SetFileName(name)
                reader.SetImageIO(self.GetImageIO())
                image = reader.Execute()
                images.append(image)
                dicts.append({k: image.GetMetaData(k) for k in image.GetMetaDataKeys()})
                report((i + 1) / len(order))
            try:
                out = sitk_series.stack_series(sitk, images, order, force_orthogonal=self.GetForceOrthogonalDirection(),
                                               threshold=self.GetSpacingWarningRelThreshold())
            except ValueError as e:
                raise MedcodecSitkError(str(e)) from None
            if self.GetOutputPixelType() != sitk.sitkUnknown:
                out = sitk.Cast(out, self.GetOutputPixelType())
        self._mlc_dicts = dicts if self.GetMetaDataDictionaryArrayUpdate() else False
        return out


class _SeriesWriterMixin(_IOMixin):
    """``sitk.ImageSeriesWriter`` (and ``sitk.WriteImage(image, [names])``) for ``.mlc``
    names: each slice a one-slice 3-D file with its 3-D position (see
    :mod:`medcodec_plugins.sitk_series`)."""

    @_sitk_errors
    def Execute(self, image, *args):
        from . import sitk_series

        names = list(args[0]) if args else list(self.GetFileNames())
        wanted = [self._wants_mlc(n, probe=False) for n in names]
        if not any(wanted):
            self._native()
            return super().Execute(image, *args)
        if not all(wanted):
            raise MedcodecSitkError("a series is written in one format: give only .mlc names (or none)")
        if image.GetDimension() != 3:
            raise MedcodecSitkError(f"ImageSeriesWriter writes a 3-D image as 2-D slices; this image is "
                                    f"{image.GetDimension()}-D (as SimpleITK, which refuses it too)")
        if len(names) != image.GetSize()[2]:
            raise MedcodecSitkError(f"The number of filenames passed is {len(names)} but {image.GetSize()[2]} "
                                    "were expected")
        level = args[2] if len(args) > 2 else self.GetCompressionLevel()
        options = write_options(self.GetCompressor(), level)
        with self._mlc_events() as report:
            write_series(sitk_series.series_slices(image), names, options, report)


def _build_classes(sitk, *bases):
    """Subclasses of SimpleITK's reader/writer classes that handle ``.mlc`` themselves: each
    is a mixin above SimpleITK's class, named like it."""
    classes = []
    for mixin, base in zip((_ReaderMixin, _WriterMixin, _SeriesReaderMixin, _SeriesWriterMixin), bases):
        cls = type(base.__name__, (mixin, base), {"_sitk": sitk, "_base": base, "__module__": __name__,
                                                  "__doc__": mixin.__doc__})
        cls.__qualname__ = base.__name__
        classes.append(cls)
    return tuple(classes)


def write_series(pieces, names, options=None, report=None) -> None:
    """Encode each piece to its name, all or nothing: every file is coded to a temporary
    beside its name first, and named only once all are done."""
    from pathlib import Path

    from medcodec.io.atomic import check_output, move_into_place, temporary_sibling

    done = []
    try:
        for i, (piece, name) in enumerate(zip(pieces, names)):
            tmp = temporary_sibling(check_output(name, overwrite=True))
            done.append((tmp, name))
            write_mlc(piece, tmp, options)
            if report:
                report((i + 1) / len(names))
        for tmp, name in done:
            move_into_place(tmp, name, overwrite=True)
    finally:
        for tmp, _ in done:
            Path(tmp).unlink(missing_ok=True)


def write_mlc(image, path, options=None, report=None) -> None:
    """Encode a SimpleITK image to ``path`` with ``options`` (an EncodeOptions), replacing
    it, as SimpleITK writers do; ``report(fraction)`` gets the progress."""
    from medcodec import api

    slices = 1
    for s in image.GetSize()[2:]:
        slices *= s
    api.write(image, path, options, overwrite=True, progress=_slice_progress(report, slices))


def install(sitk=None) -> None:
    """Put the ``.mlc``-aware classes into SimpleITK. Idempotent."""
    sitk = sitk or importlib.import_module("SimpleITK")
    if getattr(sitk, "_medcodec_originals", None):
        return
    originals = {name: getattr(sitk, name) for name in _PATCHED}
    classes = _build_classes(sitk, *(originals[n] for n in _PATCHED))
    namespaces = [sitk] + [m for m in (getattr(sitk, "extra", None),) if m is not None]
    for ns in namespaces:
        for name, cls in zip(_PATCHED, classes):
            if getattr(ns, name, None) is originals[name]:
                setattr(ns, name, cls)
    sitk._medcodec_originals = originals


def uninstall(sitk=None) -> None:
    """Restore SimpleITK's own classes."""
    sitk = sitk or importlib.import_module("SimpleITK")
    originals = getattr(sitk, "_medcodec_originals", None)
    if not originals:
        return
    for ns in [sitk] + [m for m in (getattr(sitk, "extra", None),) if m is not None]:
        for name, cls in originals.items():
            if hasattr(ns, name):
                setattr(ns, name, cls)
    sitk._medcodec_originals = None


def is_installed(sitk=None) -> bool:
    sitk = sitk or importlib.import_module("SimpleITK")
    return bool(getattr(sitk, "_medcodec_originals", None))
