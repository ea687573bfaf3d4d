"""``.mlc`` files inside SimpleITK: ReadImage, WriteImage and the reader/writer classes.

SimpleITK's readers are compiled ITK ImageIO classes and cannot be extended from Python, so
this hook subclasses ``ImageFileReader``, ``ImageFileWriter`` and ``ImageSeriesReader`` and
puts the subclasses in the ``SimpleITK`` (and ``SimpleITK.extra``) namespace. SimpleITK's
own ``ReadImage``/``WriteImage`` build those classes by name, so they dispatch too. Every
file that does not end in ``.mlc`` goes to SimpleITK untouched.

Rate or quality when writing, from ``compressor`` (comma-separated, optionally prefixed
``medcodec:``): ``iterations=K``, ``bpp=B``, ``ratio=R``, ``psnr=DB``, ``max_error=E`` (with
``iterations=K`` for its base), ``lossless``; with bpp/ratio/psnr also ``roi=auto`` (body
mask gets the target, background less), ``background_weight=W``, ``uniform`` (no
adaptive tiles) and ``no_wavelet`` (no wavelet layer). Without a rate or quality option the iteration
count is ``compressionLevel=K`` (1..model maximum), the environment variable
``MEDCODEC_ITERATIONS``, then the default (:mod:`medcodec.options`; a bounded-error write
takes its base from ``iterations=K`` or ``compressionLevel`` only). Errors are :class:`MedcodecSitkError`, a ``RuntimeError``
as SimpleITK users expect (and a ``MedcodecError``).

JAX is imported only when pixels are decoded or encoded; ``ReadImageInformation`` reads the
header alone.
"""

from __future__ import annotations

import functools
import importlib
import os

from medcodec.errors import MedcodecError

IMAGE_IO = "MedcodecImageIO"
_PATCHED = ("ImageFileReader", "ImageFileWriter", "ImageSeriesReader")
_PIXEL_IDS = {"uint8": "sitkUInt8", "int8": "sitkInt8", "uint16": "sitkUInt16", "int16": "sitkInt16",
              "uint32": "sitkUInt32", "int32": "sitkInt32", "float32": "sitkFloat32",
              "float64": "sitkFloat64"}


class MedcodecSitkError(MedcodecError, RuntimeError):
    """A medcodec error raised through SimpleITK's API."""


def is_mlc(name) -> bool:
    try:
        return os.fspath(name).lower().endswith(".mlc")
    except TypeError:
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


_NUMBER_OPTIONS = {"iterations": int, "k": int, "max_error": int, "bpp": float, "ratio": float,
                   "psnr": float, "background_weight": float}
_FLAG_OPTIONS = {"lossless": ("max_error", 0), "uniform": ("adaptive", False), "no_wavelet": ("wavelet", False)}


def _parse_compressor(compressor: str) -> dict:
    """The options named in SimpleITK's ``compressor`` string (see the module docstring)."""
    opts: dict = {}
    text = (compressor or "").strip().lower().replace("medcodec:", "")
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
                raise MedcodecSitkError(f"compressor option {part!r}: {key} must be a number")
        else:
            raise MedcodecSitkError(f"unknown compressor option {part!r}; use iterations=K, bpp=B, "
                                    "ratio=R, psnr=DB, max_error=E or lossless (with a target also "
                                    "roi=auto, background_weight=W, uniform, no_wavelet)")
    return opts


def write_options(compressor: str = "", level: int = -1):
    """The :class:`medcodec.options.EncodeOptions` of a ``.mlc`` write from SimpleITK's
    compression options: ``compressor`` first, then ``compressionLevel`` as the iteration
    count, then (lossy writes) ``$MEDCODEC_ITERATIONS``, then the defaults."""
    from medcodec.options import EncodeOptions, TARGETS, iterations_from_environment

    opts = _parse_compressor(compressor)
    if "iterations" not in opts and not set(TARGETS) & set(opts):
        if level is not None and level > 0:
            opts["iterations"] = int(level)
        elif "max_error" not in opts:  # a bounded-error base has its own default
            opts["iterations"] = iterations_from_environment()
    try:
        return EncodeOptions(**opts)
    except MedcodecError as e:
        raise MedcodecSitkError(f"compressor {compressor!r}: {e}") from e


def _physical_point(header, index) -> tuple[float, ...]:
    n = header.ndim
    d = [header.direction[i * n : (i + 1) * n] for i in range(n)]
    scaled = [header.spacing[j] * index[j] for j in range(n)]
    return tuple(header.origin[i] + sum(d[i][j] * scaled[j] for j in range(n)) for i in range(n))


def read_region(sitk, path, extract_size=(), extract_index=()):
    """Decode a ``.mlc`` file (or only the slices an ITK extract region needs) to an image."""
    from medcodec import api
    from medcodec.format import read_header
    from medcodec.io.images import Geometry, to_sitk

    if not extract_size:
        return api.read(path)
    h = read_header(path)
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
    arr, _ = api.decode_slices(path, slices=wanted)
    shape = ((len(ts),) if n > 3 else ()) + ((len(zs),) if n > 2 else ()) + (h.size[1], h.size[0])
    start = [0, 0] + index[2:]
    geom = Geometry(tuple(h.spacing), _physical_point(h, start), tuple(h.direction))
    sub = to_sitk(arr.reshape(shape), geom, h.metadata)
    return sitk.Extract(sub, [int(s) for s in extract_size], [index[0], index[1]] + [0] * (n - 2))


class _ReaderMixin:
    """The ``.mlc`` half of ``sitk.ImageFileReader`` (header-only information too); every
    other file goes to SimpleITK's own class (``super()``)."""

    _sitk = _base = None  # set on each built class

    def __init__(self, *args):
        super().__init__(*args)
        self._mlc_header = None
        self._mlc_header_file = None
        self._mlc_forced = False

    def _is_mlc(self) -> bool:
        return self._mlc_forced or is_mlc(self.GetFileName())

    @_sitk_errors
    def _header(self):
        from medcodec.format import read_header

        name = self.GetFileName()
        if self._mlc_header is None or self._mlc_header_file != name:
            self._mlc_header = read_header(name)
            self._mlc_header_file = name
        return self._mlc_header

    def _mlc_or(self, facts, fallback: str, *args):
        """``facts(header)`` for a ``.mlc`` file, else SimpleITK's ``fallback`` method."""
        return facts(self._header()) if self._is_mlc() else getattr(super(), fallback)(*args)

    def SetImageIO(self, imageio):
        self._mlc_forced = imageio == IMAGE_IO
        if not self._mlc_forced:
            super().SetImageIO(imageio)

    def GetImageIO(self):
        return IMAGE_IO if self._is_mlc() else super().GetImageIO()

    @classmethod
    def GetImageIOFromFileName(cls, fileName):
        return IMAGE_IO if is_mlc(fileName) else cls._base.GetImageIOFromFileName(fileName)

    def GetRegisteredImageIOs(self):
        return tuple(super().GetRegisteredImageIOs()) + (IMAGE_IO,)

    def ReadImageInformation(self):
        if not self._is_mlc():
            return super().ReadImageInformation()
        self._mlc_header = None
        self._header()

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
        return self.GetPixelID() if self._is_mlc() else super().GetPixelIDValue()

    def GetMetaDataKeys(self):
        return self._mlc_or(lambda h: tuple(h.metadata), "GetMetaDataKeys")

    def HasMetaDataKey(self, key):
        return self._mlc_or(lambda h: key in h.metadata, "HasMetaDataKey", key)

    def GetMetaData(self, key):
        if not self._is_mlc():
            return super().GetMetaData(key)
        try:
            return self._header().metadata[key]
        except KeyError:
            raise MedcodecSitkError(f"no metadata key {key!r} in {self.GetFileName()}")

    @_sitk_errors
    def Execute(self):
        if not self._is_mlc():
            return super().Execute()
        sitk = self._sitk
        image = read_region(sitk, self.GetFileName(), tuple(self.GetExtractSize()), tuple(self.GetExtractIndex()))
        if self.GetOutputPixelType() != sitk.sitkUnknown:
            image = sitk.Cast(image, self.GetOutputPixelType())
        return image


class _WriterMixin:
    """``sitk.ImageFileWriter`` that also writes ``.mlc`` (atomically)."""

    _sitk = _base = None

    @_sitk_errors
    def Execute(self, image, *args):
        name = args[0] if args else self.GetFileName()
        if not is_mlc(name):
            return super().Execute(image, *args)
        level = args[2] if len(args) > 2 else self.GetCompressionLevel()
        write_mlc(image, name, write_options(self.GetCompressor(), level))


class _SeriesReaderMixin:
    """``sitk.ImageSeriesReader`` that also stacks a list of ``.mlc`` files."""

    _sitk = _base = None

    @_sitk_errors
    def Execute(self):
        names = list(self.GetFileNames())
        if not names or not all(is_mlc(n) for n in names):
            return super().Execute()
        return read_series(self._sitk, names, self.GetOutputPixelType())


def _build_classes(sitk, base_reader, base_writer, base_series):
    """Subclasses of SimpleITK's reader/writer classes that handle ``.mlc`` themselves: each
    is a mixin above SimpleITK's class, named like it."""
    classes = []
    for mixin, base in ((_ReaderMixin, base_reader), (_WriterMixin, base_writer), (_SeriesReaderMixin, base_series)):
        cls = type(base.__name__, (mixin, base), {"_sitk": sitk, "_base": base, "__module__": __name__,
                                                  "__doc__": mixin.__doc__})
        cls.__qualname__ = base.__name__
        classes.append(cls)
    return tuple(classes)


def write_mlc(image, path, options=None) -> None:
    """Encode a SimpleITK image to ``path`` with ``options`` (an EncodeOptions), replacing
    it, as SimpleITK writers do."""
    from medcodec import api

    api.write(image, path, options, overwrite=True)


def read_series(sitk, names, output_pixel_type):
    """Stack ``.mlc`` files of equal size into one image one dimension higher (as ITK does
    for a series: spacing along the new axis = distance between the first two origins)."""
    from medcodec import api

    images = [api.read(n) for n in names]
    images = [im[:, :, 0] if im.GetDimension() == 3 and im.GetSize()[2] == 1 else im for im in images]
    if len({im.GetSize() for im in images}) != 1:
        raise MedcodecSitkError("the .mlc files of a series must all have the same size")
    if len(images) == 1:
        out = images[0]
    else:
        o0, o1 = images[0].GetOrigin(), images[1].GetOrigin()
        step = sum((a - b) ** 2 for a, b in zip(o0, o1)) ** 0.5 or 1.0
        out = sitk.JoinSeries(images, 0.0, step)
        if out.GetDimension() == 3 and images[0].GetDimension() == 2:
            d2 = images[0].GetDirection()
            out.SetDirection((d2[0], d2[1], 0.0, d2[2], d2[3], 0.0, 0.0, 0.0, 1.0))
            out.SetOrigin(tuple(o0) + (0.0,))
    if output_pixel_type != sitk.sitkUnknown:
        out = sitk.Cast(out, output_pixel_type)
    return out


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
