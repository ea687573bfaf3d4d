"""Activate the SimpleITK hook the moment ``SimpleITK`` is imported, at almost no cost.

Run at interpreter start-up by ``medcodec_sitk.pth`` (an ``import`` line, Python <= 3.17)
and ``medcodec_sitk.start`` (PEP 829 entry point ``medcodec_plugins.autoload:activate``,
Python >= 3.15); :func:`activate` is idempotent so both may run. It imports nothing heavy:
it only puts a small finder in front of ``sys.meta_path`` that, when ``SimpleITK`` is
imported, lets the real loader run and then installs the hook.

Set ``MEDCODEC_SITK_HOOK=0`` to turn automatic activation off;
``medcodec_plugins.sitk_hook.install()`` still works by hand.
"""

import os
import sys

_DISABLED = ("0", "false", "no", "off")


class _SimpleITKImportWatcher:
    """meta_path finder that only reacts to the top-level ``SimpleITK`` import."""

    def find_spec(self, name, path=None, target=None):
        if name != "SimpleITK":
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
            _install_quietly(module)

        try:
            loader.exec_module = exec_module  # per-spec loader instance
        except AttributeError:
            return spec
        return spec


def _install_quietly(module) -> None:
    try:
        from .sitk_hook import install

        install(module)
    except Exception as e:  # never break `import SimpleITK` because of the hook
        sys.stderr.write(f"medcodec: SimpleITK .mlc hook not installed: {e}\n")


def activate() -> None:
    """Install the watcher (or the hook, if SimpleITK is already imported). Idempotent."""
    if os.environ.get("MEDCODEC_SITK_HOOK", "1").strip().lower() in _DISABLED:
        return
    if any(isinstance(f, _SimpleITKImportWatcher) for f in sys.meta_path):
        return
    if "SimpleITK" in sys.modules:
        _install_quietly(sys.modules["SimpleITK"])
        return
    sys.meta_path.insert(0, _SimpleITKImportWatcher())


def deactivate() -> None:
    """Remove the watcher (the hook itself is removed by ``sitk_hook.uninstall()``)."""
    sys.meta_path[:] = [f for f in sys.meta_path if not isinstance(f, _SimpleITKImportWatcher)]
