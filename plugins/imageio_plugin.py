"""imageio v3 plugin: ``iio.imread("ct.mlc")``, ``iio.imwrite("ct.mlc", volume)``.

Registered automatically when ``imageio`` is imported (see :mod:`medcodec_plugins.autoload`)
or by hand with :func:`register`. Arrays are in numpy axis order (z, y, x); writing takes
``iterations=`` (default ``MEDCODEC_ITERATIONS``, else medcodec's default). ``metadata()`` returns the header.
"""

from __future__ import annotations


PLUGIN_NAME = "medcodec"


def register(imageio_module=None) -> None:
    """Make ``.mlc`` known to imageio (idempotent)."""
    from imageio.config import FileExtension, PluginConfig, known_extensions, known_plugins

    known_plugins[PLUGIN_NAME] = PluginConfig(
        name=PLUGIN_NAME, class_name="MedcodecPlugin", module_name="medcodec_plugins.imageio_plugin")
    exts = known_extensions.setdefault(".mlc", [])
    if not any(PLUGIN_NAME in e.priority for e in exts):
        exts.insert(0, FileExtension(extension=".mlc", priority=[PLUGIN_NAME], name="medcodec",
                                     description="medcodec learned medical image codec", volume_support=True))


def _plugin_class():
    from imageio.core.request import InitializationError, IOMode
    from imageio.core.v3_plugin_api import ImageProperties, PluginV3

    class MedcodecPlugin(PluginV3):
        """Reads and writes whole ``.mlc`` images (one ndimage per file)."""

        def __init__(self, request):
            super().__init__(request)
            if (request.extension or "").lower() != ".mlc":
                raise InitializationError("medcodec handles .mlc files only")
            self._mode = request.mode.io_mode
            self._IOMode = IOMode

        def _path(self):
            return self.request.get_local_filename()

        def read(self, *, index=None, iterations=None):
            from medcodec import api

            if index not in (None, 0, Ellipsis):
                raise IndexError(".mlc files hold one image; use index=0")
            array, _ = api.decompress(self._path(), iterations=iterations)
            return array

        def iter(self):
            yield self.read()

        def write(self, ndimage, *, iterations=None, spacing=None, is_batch=False):
            from medcodec import api
            from medcodec.io.images import Geometry
            from medcodec.options import iterations_from_environment

            import numpy as np

            arr = np.asarray(ndimage)
            k = iterations or iterations_from_environment()
            geom = None
            if spacing is not None:
                geom = Geometry(tuple(float(s) for s in spacing), (0.0,) * arr.ndim,
                                tuple(np.eye(arr.ndim).ravel().tolist()))
            path = self.request.get_local_filename()
            api.compress(arr, path, iterations=k, geometry=geom, overwrite=True)
            return None

        def properties(self, index=None):
            from medcodec.format import read_header

            import numpy as np

            h = read_header(self._path())
            return ImageProperties(shape=tuple(reversed(h.size)), dtype=np.dtype(h.pixel_type),
                                   is_batch=False, spacing=tuple(reversed(h.spacing)))

        def metadata(self, index=None, exclude_applied=True):
            from medcodec.api import info

            return info(self._path())

    return MedcodecPlugin


def __getattr__(name):
    # imageio imports the class by name; build it lazily so importing this module is free
    if name == "MedcodecPlugin":
        cls = _plugin_class()
        globals()[name] = cls
        return cls
    raise AttributeError(name)
