"""Shared pieces of the SimpleITK IO tests ported to ``.mlc`` (``test_sitk_port_*.py``).

SimpleITK's tests (``Testing/Unit/sitkImageIOTests.cxx`` and ``Testing/Unit/Python/`` of
SimpleITK v2.5.x) run in this process with the hook installed and the tiny model. Each
``.mlc`` case has a ``.mha`` twin written and read by SimpleITK's own MetaImageIO: the twin's
answer is the reference. ``.mlc`` files are written lossless (``compressor="lossless"``)
wherever pixels are compared.
"""

from __future__ import annotations

import numpy as np
import pytest

FORMATS = ("mha", "mlc")


@pytest.fixture
def sitk(tiny_checkpoints, monkeypatch):
    """SimpleITK with the ``.mlc`` hook and the tiny model (2 iterations by default). The C
    locale is restored afterwards: SimpleITK's own DICOM writer (GDCM) sets it to "C", which
    would make later ``subprocess.run(text=True)`` calls in this process decode ASCII."""
    import locale

    monkeypatch.setenv("MEDCODEC_CHECKPOINTS", str(tiny_checkpoints))
    monkeypatch.setenv("MEDCODEC_ITERATIONS", "2")
    import SimpleITK

    from medcodec_plugins import sitk_hook

    saved = locale.setlocale(locale.LC_ALL)
    sitk_hook.install(SimpleITK)
    assert sitk_hook.is_installed(SimpleITK)
    yield SimpleITK
    locale.setlocale(locale.LC_ALL, saved)


def mr_volume(sitk, size=(40, 32, 6), start=(40, 50, 20)):
    """A crop of the real MR head volume shipped with medcodec (int16)."""
    from importlib.resources import files

    path = files("medcodec.samples") / "mr_head_t1.nii.gz"
    vol = sitk.ReadImage(str(path))
    crop = sitk.RegionOfInterest(vol, list(size), list(start))
    return sitk.Cast(crop, sitk.sitkInt16)


def write(sitk, image, path, **kwargs):
    """``sitk.WriteImage`` as SimpleITK's tests call it; ``.mlc`` files lossless unless a
    compressor is given."""
    if str(path).endswith(".mlc"):
        kwargs.setdefault("compressor", "lossless")
    sitk.WriteImage(image, str(path), **kwargs)
    return str(path)


def same_pixels(sitk, a, b) -> bool:
    return a.GetSize() == b.GetSize() and np.array_equal(sitk.GetArrayViewFromImage(a), sitk.GetArrayViewFromImage(b))


def geometry(image):
    return image.GetSize(), image.GetSpacing(), image.GetOrigin(), image.GetDirection()


def close_geometry(a, b, tol=1e-6) -> bool:
    ga, gb = geometry(a), geometry(b)
    return ga[0] == gb[0] and all(np.allclose(x, y, atol=tol, rtol=0) for x, y in zip(ga[1:], gb[1:]))


class Counter:
    """Counts one SimpleITK event, as the C++ tests' ``CountCommand``; records progress."""

    def __init__(self, po):
        self.po, self.count, self.progress = po, 0, []

    def __call__(self):
        self.count += 1
        self.progress.append(self.po.GetProgress())


def count_events(sitk, po):
    """Counters for each event of process object ``po``."""
    names = ("Start", "End", "Progress", "Iteration", "Abort", "User", "Delete")
    counters = {n: Counter(po) for n in names}
    for n, c in counters.items():
        po.AddCommand(getattr(sitk, f"sitk{n}Event"), c)
    return counters


class CaptureLogger:
    """A SimpleITK logger keeping ITK's warnings (SimpleITK's ``LoggerBase`` idiom)."""

    def __init__(self, sitk):
        base = sitk.LoggerBase
        outer = self
        self.warnings: list[str] = []

        class _Logger(base):
            def DisplayWarningText(self, t):
                outer.warnings.append(t)

            def DisplayText(self, t):
                pass

            def DisplayErrorText(self, t):
                pass

            def DisplayGenericOutputText(self, t):
                pass

            def DisplayDebugText(self, t):
                pass

        self.logger = _Logger()
        self.previous = self.logger.SetAsGlobalITKLogger()

    def close(self):
        self.previous.SetAsGlobalITKLogger()
