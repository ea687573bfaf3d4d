"""Activate medcodec's integrations the moment their host library is imported, at almost
no cost: ``SimpleITK`` gets the ``.mlc`` hook, ``imageio`` gets the ``.mlc`` plugin.

Run at interpreter start-up by ``medcodec_sitk.pth`` (an ``import`` line, Python <= 3.17)
and ``medcodec_sitk.start`` (PEP 829 entry point ``medcodec_plugins.autoload:activate``,
Python >= 3.15); :func:`activate` is idempotent so both may run. It imports nothing heavy:
it only puts a small finder in front of ``sys.meta_path`` that, when a watched library is
imported, lets the real loader run and then installs the integration.

Environment: ``MEDCODEC_SITK_HOOK=0`` leaves SimpleITK alone, ``MEDCODEC_AUTOLOAD=0``
turns all automatic activation off. ``medcodec_plugins.sitk_hook.install()`` and
``medcodec_plugins.imageio_plugin.register()`` still work by hand.
"""

import os
import sys

_OFF = ("0", "false", "no", "off")
# watched top-level module -> (integration module, function, environment switch)
_WATCHED = {
    "SimpleITK": ("medcodec_plugins.sitk_hook", "install", "MEDCODEC_SITK_HOOK"),
    "imageio": ("medcodec_plugins.imageio_plugin", "register", "MEDCODEC_IMAGEIO_PLUGIN"),
}


def _enabled(switch: str) -> bool:
    return all(os.environ.get(v, "1").strip().lower() not in _OFF for v in ("MEDCODEC_AUTOLOAD", switch))


class _ImportWatcher:
    """meta_path finder that only reacts to the top-level imports in ``_WATCHED``."""

    def find_spec(self, name, path=None, target=None):
        if name not in _WATCHED or not _enabled(_WATCHED[name][2]):
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(name, path, target)
            if spec is not None:
                break
        else:
            return None
        loader = spec.loader
        if loader is None or not hasattr(loader, "exec_module"):
            return spec
        original_exec = loader.exec_module

        def exec_module(module):
            original_exec(module)
            _integrate(name, module)

        try:
            loader.exec_module = exec_module  # the loader instance belongs to this spec
        except AttributeError:
            pass
        return spec


def _integrate(name: str, module) -> None:
    """Install the integration for ``name``; never break the host library's import."""
    mod_name, func, _ = _WATCHED[name]
    try:
        import importlib

        getattr(importlib.import_module(mod_name), func)(module)
    except Exception as e:
        sys.stderr.write(f"medcodec: {name} integration not installed: {e}\n")


def activate() -> None:
    """Install the watcher, or integrate libraries already imported. Idempotent."""
    if not _enabled("MEDCODEC_AUTOLOAD"):
        return
    if any(isinstance(f, _ImportWatcher) for f in sys.meta_path):
        return
    for name, (_, _, switch) in _WATCHED.items():
        if name in sys.modules and _enabled(switch):
            _integrate(name, sys.modules[name])
    sys.meta_path.insert(0, _ImportWatcher())


def deactivate() -> None:
    """Remove the watcher (installed integrations stay until uninstalled)."""
    sys.meta_path[:] = [f for f in sys.meta_path if not isinstance(f, _ImportWatcher)]
