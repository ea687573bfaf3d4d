"""Build hook: ship the SimpleITK start-up files at the top of site-packages.

Everything else is declared in pyproject.toml. ``medcodec_sitk.pth`` (an ``import`` line,
read by Python <= 3.17) and ``medcodec_sitk.start`` (PEP 829, Python >= 3.15) both call
``medcodec_plugins.autoload:activate``, which is idempotent and costs microseconds.
"""

from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

STARTUP_FILES = ("medcodec_sitk.pth", "medcodec_sitk.start")
HERE = Path(__file__).parent


class build_py_with_startup_files(build_py):
    def run(self):
        super().run()
        for name in STARTUP_FILES:
            self.copy_file(str(HERE / "plugins" / name), str(Path(self.build_lib) / name), preserve_mode=False)

    def get_outputs(self, include_bytecode=True):
        return list(super().get_outputs(include_bytecode)) + [
            str(Path(self.build_lib) / name) for name in STARTUP_FILES]

    def get_output_mapping(self):
        mapping = dict(super().get_output_mapping())
        mapping.update({str(Path(self.build_lib) / n): str(HERE / "plugins" / n) for n in STARTUP_FILES})
        return mapping


class _StrategyWithStartupFiles:
    """Wraps an editable-install strategy so the editable wheel carries the start-up files."""

    def __init__(self, inner):
        self.inner = inner

    def __call__(self, wheel, files, mapping):
        self.inner(wheel, files, mapping)
        for name in STARTUP_FILES:
            wheel.writestr(name, (HERE / "plugins" / name).read_bytes())

    def __enter__(self):
        self.inner.__enter__()
        return self

    def __exit__(self, *exc):
        return self.inner.__exit__(*exc)


cmdclass = {"build_py": build_py_with_startup_files}
try:  # setuptools >= 64; the strategy hook is internal, so fail soft (hook then needs install())
    from setuptools.command.editable_wheel import editable_wheel

    if hasattr(editable_wheel, "_select_strategy"):

        class editable_wheel_with_startup_files(editable_wheel):
            def _select_strategy(self, *args, **kwargs):
                return _StrategyWithStartupFiles(super()._select_strategy(*args, **kwargs))

        cmdclass["editable_wheel"] = editable_wheel_with_startup_files
except ImportError:
    pass

setup(cmdclass=cmdclass)
