"""``medcodec report``: the page's parts checked against independent computations (PNG read
back by SimpleITK, windows by the modality rules), and the page as headless Chromium renders
it: the screenshot's panels hold exactly the windowed original and decoded slices."""

from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pytest
import SimpleITK as sitk

from medcodec import api, review_report
from medcodec.cli import main
from medcodec.errors import InputError, WriteError
from medcodec.io.images import from_sitk, read_image

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def test_png_reads_back_exactly(tmp_path, rng):
    gray = rng.integers(0, 256, (37, 53), dtype=np.uint8)
    (tmp_path / "g.png").write_bytes(review_report.png(gray))
    np.testing.assert_array_equal(sitk.GetArrayFromImage(sitk.ReadImage(str(tmp_path / "g.png"))), gray)


def test_windows_follow_the_modality():
    ct = np.array([[-1000, 0], [40, 1500]], np.int16)
    assert review_report.display_window(ct, {"0008|0060": "CT"}) == (-160, 240)  # soft tissue 40/400
    assert review_report.display_window(ct, {"0028|1050": "300\\40", "0028|1051": "1500\\400"}) == (-450, 1050)
    mr = np.arange(1000).reshape(10, 100)
    lo, hi = review_report.display_window(mr, {"0008|0060": "MR"})
    assert lo == pytest.approx(np.percentile(mr, 0.5)) and hi == pytest.approx(np.percentile(mr, 99.5))


def test_rate_interpolation_and_refusals(tmp_path, ct_small_path, mr_series_dir, tiny_model_id):
    curve = [(0.5, 30.0), (2.0, 40.0)]
    assert review_report.psnr_at_rate(curve, 1.0) == pytest.approx(35.0)  # halfway in log rate
    assert review_report.psnr_at_rate(curve, 3.0) is None
    mlc = tmp_path / "mr.mlc"
    assert main(["encode", str(mr_series_dir), str(mlc), "-k", "1", "--model", tiny_model_id, "-q"]) == 0
    with pytest.raises(InputError, match="decoded image of this original"):
        review_report.write_report(ct_small_path, mlc, tmp_path / "r.html")
    with pytest.raises(InputError, match="HTML"):
        review_report.write_report(mr_series_dir, mlc, tmp_path / "r.pdf")
    assert main(["report", str(mr_series_dir), str(mlc), "-o", str(tmp_path / "r.html")]) == 0
    with pytest.raises(WriteError, match="exists"):
        review_report.write_report(mr_series_dir, mlc, tmp_path / "r.html")


@pytest.mark.skipif(CHROMIUM is None, reason="headless Chromium is not installed (Debian package chromium; "
                    ".ci/system-packages installs it)")
def test_report_renders_in_headless_chromium(tmp_path, ct_small_path):
    mlc = tmp_path / "ct.mlc"  # the shipped model
    assert main(["encode", str(ct_small_path), str(mlc), "-k", "4", "-q"]) == 0
    page = tmp_path / "report.html"
    assert main(["report", str(ct_small_path), str(mlc), "-o", str(page)]) == 0
    shot = tmp_path / "shot.png"
    subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                    "--disable-background-networking", "--disable-component-update", "--disable-sync",
                    f"--user-data-dir={tmp_path / 'profile'}", "--hide-scrollbars", "--force-device-scale-factor=1",
                    "--window-size=900,900", f"--screenshot={shot}", page.as_uri()],
                   check=True, capture_output=True, timeout=120)
    screen = sitk.GetArrayFromImage(sitk.ReadImage(str(shot)))[..., :3].astype(int)
    original = from_sitk(read_image(ct_small_path))[0][0]
    decoded = api.decompress(mlc)[0][0]
    h, w = original.shape

    def windowed(a):  # CT without a stored window: soft tissue, centre 40 HU, width 400
        return np.clip(np.round((a.astype(float) + 160) * 255 / 400), 0, 255)

    for x0, expected in ((0, windowed(original)), (w + 16, windowed(decoded))):  # panels 16 px apart
        panel = screen[:h, x0:x0 + w]
        assert np.all(panel[..., 0] == panel[..., 2])  # grey, shown as stored
        assert np.abs(panel[..., 0] - expected).mean() < 1.0
    error = decoded.astype(float) - original
    scale = max(1.0, np.percentile(np.abs(error), 99.9))  # the page's stated scale: grey 128 = 0
    assert f"-/+{scale:g})" in page.read_text()
    diff = screen[:h, 2 * (w + 16):3 * w + 32, 0]
    assert np.abs(diff - np.clip(np.round(128 + 127 * error / scale), 0, 255)).mean() < 1.0
    red = (screen[..., 0] > 200) & (screen[..., 1] < 60) & (screen[..., 2] < 60)
    assert red[h:].sum() > 50  # medcodec's point on the rate-distortion plot
