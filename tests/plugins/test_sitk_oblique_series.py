"""Acceptance (issue 20): a 20-slice oblique MR series written file by file as ``.mlc`` and
read back as a list has GDCM's size, spacing, origin and direction (within 1e-4).

No real oblique DICOM series ships with the test dependencies, so one is made from a real
image: 20 axial slices of medcodec's MR head sample, given an oblique direction and
written as DICOM by SimpleITK/GDCM (one file per slice with Image Position / Orientation
Patient, as SimpleITK's "DICOM series from array" example does). GDCM reads it back as the
reference; each file is then converted as a user would,
``sitk.WriteImage(sitk.ReadImage(f), f.replace(".dcm", ".mlc"))``.
"""

from __future__ import annotations

import os

import numpy as np
import pytest

from .sitkport import mr_volume, sitk  # noqa: F401

# a rotation of about 25 degrees around an oblique axis (an MR "double oblique" plane)
DIRECTION = (0.9315861948025004, -0.04478473479720045, 0.3607512843810014, 0.09741073879527705, 0.9868434990004809,
             -0.12903897259295835, -0.3502260835813861, 0.15535197459199665, 0.923692294202789)


def write_oblique_dicom_series(sitk, folder, slices=20):
    """DICOM files of ``slices`` real MR slices on an oblique grid; returns the volume."""
    vol = mr_volume(sitk, (96, 80, slices), (10, 30, 14))
    vol.SetSpacing((0.9375, 0.9375, 3.3))
    vol.SetDirection(DIRECTION)
    vol.SetOrigin((-45.2, -101.7, 33.25))
    d = vol.GetDirection()
    series_uid = "1.2.826.0.1.3680043.8.498.2020"
    writer = sitk.ImageFileWriter()
    writer.KeepOriginalImageUIDOn()
    common = {"0008|0060": "MR", "0008|0008": "DERIVED\\SECONDARY", "0010|0010": "Oblique^Phantom",
              "0020|000d": series_uid + ".1", "0020|000e": series_uid, "0008|103e": "oblique T1",
              "0020|0037": "\\".join(f"{v:.16g}" for v in (d[0], d[3], d[6], d[1], d[4], d[7])),
              "0018|0050": "3.3"}
    for i in range(slices):
        piece = vol[:, :, i]
        for k, v in common.items():
            piece.SetMetaData(k, v)
        piece.SetMetaData("0008|0018", f"{series_uid}.2.{i + 1}")
        piece.SetMetaData("0020|0013", str(i + 1))
        piece.SetMetaData("0020|0032", "\\".join(f"{v:.16g}" for v in vol.TransformIndexToPhysicalPoint((0, 0, i))))
        writer.SetFileName(os.path.join(folder, f"IM{i + 1:04d}.dcm"))
        writer.Execute(piece)
    return vol


@pytest.fixture
def oblique_dicom(sitk, tmp_path):
    folder = tmp_path / "dicom"
    folder.mkdir()
    vol = write_oblique_dicom_series(sitk, str(folder))
    names = list(sitk.ImageSeriesReader.GetGDCMSeriesFileNames(str(folder)))
    assert len(names) == 20
    return vol, names


def deviations(a, b) -> dict:
    return {k: float(np.max(np.abs(np.subtract(getattr(a, f"Get{k}")(), getattr(b, f"Get{k}")()))))
            for k in ("Spacing", "Origin", "Direction")}


@pytest.mark.parametrize("compressor", ["lossless", ""], ids=["lossless", "default_lossy"])
def test_oblique_mr_series_file_by_file_matches_gdcm(sitk, oblique_dicom, compressor):
    """The acceptance criterion; geometry must not depend on the coding."""
    vol, dcm = oblique_dicom
    gdcm = sitk.ReadImage(dcm)
    assert not np.allclose(gdcm.GetDirection(), np.eye(3).ravel(), atol=0.1)  # really oblique
    mlc = []
    for f in dcm:
        out = f.replace(".dcm", ".mlc")
        sitk.WriteImage(sitk.ReadImage(f), out, compressor=compressor)
        mlc.append(out)
    back = sitk.ReadImage(mlc)
    dev = deviations(back, gdcm)
    print(f"\noblique 20-slice MR, {compressor or 'default'} .mlc vs GDCM: size {back.GetSize()} vs "
          f"{gdcm.GetSize()}, max |difference| spacing {dev['Spacing']:.3g}, origin {dev['Origin']:.3g}, "
          f"direction {dev['Direction']:.3g}")
    assert back.GetSize() == gdcm.GetSize() == (96, 80, 20)
    assert all(v <= 1e-4 for v in dev.values()), dev
    assert max(deviations(gdcm, vol).values()) <= 1e-4  # and GDCM's answer is the volume written
    if compressor == "lossless":
        assert np.array_equal(sitk.GetArrayViewFromImage(back), sitk.GetArrayViewFromImage(gdcm))


def test_oblique_series_reversed_and_shuffled_like_gdcm(sitk, oblique_dicom):
    """ReverseOrder on the same lists gives GDCM's reversed geometry."""
    _, dcm = oblique_dicom
    mlc = []
    for f in dcm:
        mlc.append(f.replace(".dcm", ".mlc"))
        sitk.WriteImage(sitk.ReadImage(f), mlc[-1], compressor="lossless")
    for reverse in (False, True):
        readers = []
        for names in (dcm, mlc):
            r = sitk.ImageSeriesReader()
            r.SetFileNames(names)
            r.SetReverseOrder(reverse)
            readers.append(r.Execute())
        assert readers[0].GetSize() == readers[1].GetSize()
        assert max(deviations(readers[1], readers[0]).values()) <= 1e-4
