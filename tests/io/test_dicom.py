"""DICOM -> .mlc -> DICOM on real series: dicom3tools' validator finds no new error, pydicom
reads honest lossy-compression attributes (ratio from the source's own pixel bytes), the
geometry and pixels equal the decode, GDCM reads it back, and outputs are written safely."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk

from medcodec import api
from medcodec.cli import main
from medcodec.errors import MedcodecError, UnsupportedPixelTypeError, WriteError
from medcodec.io.dicom import DicomOptions, TRANSFER_SYNTAXES, write_series
from medcodec.io.images import Geometry, read_image

DCIODVFY = shutil.which("dciodvfy")
needs_dciodvfy = pytest.mark.skipif(DCIODVFY is None, reason="dicom3tools' dciodvfy is not installed "
                                    "(Debian package dicom3tools; .ci/system-packages installs it)")


def _sources(folder: Path) -> list[pydicom.Dataset]:
    files = sitk.ImageSeriesReader.GetGDCMSeriesFileNames(str(folder)) if folder.is_dir() else [str(folder)]
    return [pydicom.dcmread(f) for f in files]


def _raw_bytes(datasets) -> int:
    return sum(d.Rows * d.Columns * int(getattr(d, "NumberOfFrames", 1)) * d.BitsAllocated // 8 for d in datasets)


def _errors(path: Path) -> set[str]:
    out = subprocess.run([DCIODVFY, str(path)], capture_output=True, text=True, timeout=60)
    return {line.strip() for line in (out.stdout + out.stderr).splitlines() if line.startswith("Error")}


def _dev_ct() -> Path:
    import data_store

    return Path(data_store.__file__).parent / "data" / "explicit_VR-UN.dcm"


@pytest.fixture
def mr_lossy(tmp_path, mr_series_dir, tiny_model_id):
    mlc = tmp_path / "mr.mlc"
    assert main(["encode", str(mr_series_dir), str(mlc), "-k", "3", "--model", tiny_model_id, "-q"]) == 0
    return mlc


def test_lossy_round_trip_of_a_real_mr_series(tmp_path, mr_series_dir, mr_lossy):
    out = tmp_path / "mr_dicom"
    assert main(["decode", str(mr_lossy), str(out) + "/", "--quiet"]) == 0
    sources, outputs = _sources(mr_series_dir), _sources(out)
    assert len(outputs) == len(sources) == 2
    decoded, _ = api.decompress(mr_lossy)
    ratio = _raw_bytes(sources) / os.path.getsize(mr_lossy)
    series = {d.SeriesInstanceUID for d in outputs}
    assert len(series) == 1 and series.isdisjoint({d.SeriesInstanceUID for d in sources})
    reference = api.read(mr_lossy)  # the geometry of the decode: one volume grid
    for z, (src, dst, plane) in enumerate(zip(sources, outputs, decoded)):
        assert dst.LossyImageCompression == "01"
        assert abs(float(dst.LossyImageCompressionRatio) / ratio - 1) < 0.01
        assert dst.LossyImageCompressionMethod == "MEDCODEC"
        assert list(dst.ImageType[:2]) == ["DERIVED", "SECONDARY"]
        assert dst.SOPInstanceUID != src.SOPInstanceUID and dst.SOPClassUID == src.SOPClassUID
        assert dst.StudyInstanceUID == src.StudyInstanceUID and dst.PatientName == src.PatientName
        np.testing.assert_allclose([float(v) for v in dst.ImagePositionPatient],
                                   reference.TransformIndexToPhysicalPoint((0, 0, z)), atol=1e-4)
        direction = np.reshape(reference.GetDirection(), (3, 3))
        np.testing.assert_allclose([float(v) for v in dst.ImageOrientationPatient],
                                   [*direction[:, 0], *direction[:, 1]], atol=1e-4)
        np.testing.assert_allclose([float(v) for v in dst.PixelSpacing], reference.GetSpacing()[1::-1], atol=1e-6)
        # and the source's own: a volume grid keeps its slice positions to a few hundredths of a mm
        for name in ("ImagePositionPatient", "ImageOrientationPatient", "PixelSpacing"):
            np.testing.assert_allclose(np.array(dst.get(name), float), np.array(src.get(name), float), atol=0.05)
        np.testing.assert_array_equal(dst.pixel_array, plane)
    gdcm = read_image(out)  # SimpleITK/GDCM: the geometry and pixels of the decode
    np.testing.assert_array_equal(sitk.GetArrayFromImage(gdcm), decoded)
    for get in ("GetOrigin", "GetSpacing", "GetDirection"):
        np.testing.assert_allclose(getattr(gdcm, get)(), getattr(reference, get)(), atol=1e-4)


@pytest.mark.parametrize("syntax", list(TRANSFER_SYNTAXES))
def test_lossless_series_say_00_in_every_transfer_syntax(tmp_path, mr_series_dir, tiny_model_id, syntax):
    mlc = tmp_path / "mr.mlc"
    assert main(["encode", str(mr_series_dir), str(mlc), "--lossless", "--model", tiny_model_id, "-q"]) == 0
    files = api.decode_to_dicom(mlc, tmp_path / "out", DicomOptions(syntax))
    want = getattr(pydicom.uid, TRANSFER_SYNTAXES[syntax][0])
    for src, path in zip(_sources(mr_series_dir), files):
        dst = pydicom.dcmread(path)
        assert dst.file_meta.TransferSyntaxUID == want
        assert dst.LossyImageCompression == "00" and "LossyImageCompressionRatio" not in dst
        assert list(dst.ImageType) == list(src.ImageType)  # the pixels are the source's
        np.testing.assert_array_equal(dst.pixel_array, src.pixel_array)


@needs_dciodvfy
@pytest.mark.parametrize("source", ["mr_series", "ct_small", "dev_ct", "mr_overlays", "enhanced_ct"])
def test_validator_finds_no_new_error(tmp_path, source, mr_series_dir, ct_small_path, tiny_model_id):
    """Also a source with overlay planes (not kept: their attributes go too) and an Enhanced CT
    (its frames become a classic CT Image series)."""
    path = {"mr_series": mr_series_dir, "ct_small": ct_small_path, "dev_ct": _dev_ct(),
            "mr_overlays": _dev_ct().with_name("MR-SIEMENS-DICOM-WithOverlays.dcm"),
            "enhanced_ct": _dev_ct().with_name("eCT_Supplemental.dcm")}[source]
    mlc = tmp_path / "x.mlc"
    assert main(["encode", str(path), str(mlc), "-k", "2", "--model", tiny_model_id, "-q"]) == 0
    files = api.decode_to_dicom(mlc, tmp_path / "out")
    before = set().union(*(_errors(Path(f)) for f in (path.iterdir() if path.is_dir() else [path])))
    for f in files:
        assert _errors(f) <= before, f


@needs_dciodvfy
def test_non_dicom_source_becomes_valid_secondary_capture(tmp_path, tiny_model_id):
    array = (np.arange(3 * 32 * 40) % 700).reshape(3, 32, 40).astype(np.int16)
    image = sitk.GetImageFromArray(array)
    image.SetSpacing((0.5, 0.6, 2.0))
    mlc = tmp_path / "v.mlc"
    api.write(image, mlc, iterations=1, model_id=tiny_model_id)
    files = api.decode_to_dicom(mlc, tmp_path / "out")
    assert all(not _errors(f) for f in files)
    first = pydicom.dcmread(files[0])
    assert first.SOPClassUID == "1.2.840.10008.5.1.4.1.1.7" and first.Modality == "OT"
    assert [float(v) for v in first.PixelSpacing] == [0.6, 0.5]
    np.testing.assert_allclose([float(v) for v in pydicom.dcmread(files[2]).ImagePositionPatient], [0, 0, 4.0])


def test_a_second_lossy_step_is_recorded_after_the_first(tmp_path, mr_lossy, tiny_model_id):
    first = api.decode_to_dicom(mr_lossy, tmp_path / "once")
    again = tmp_path / "again.mlc"
    assert main(["encode", str(tmp_path / "once"), str(again), "-k", "1", "--model", tiny_model_id, "-q"]) == 0
    dst = pydicom.dcmread(api.decode_to_dicom(again, tmp_path / "twice")[0])
    ratios = [float(v) for v in dst.LossyImageCompressionRatio]
    assert len(ratios) == 2 and ratios[0] == float(pydicom.dcmread(first[0]).LossyImageCompressionRatio)
    assert list(dst.LossyImageCompressionMethod) == ["MEDCODEC", "MEDCODEC"]


def test_outputs_are_never_clobbered_or_left_half_written(tmp_path, mr_lossy, monkeypatch):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    assert main(["decode", str(mr_lossy), str(mine), "--format", "dicom", "-q", "--force"]) == 2
    assert (mine / "notes.txt").read_text() == "keep me"  # a folder of the user's: never replaced
    out = tmp_path / "out"
    api.decode_to_dicom(mr_lossy, out)
    with pytest.raises(WriteError, match="--force"):
        api.decode_to_dicom(mr_lossy, out)
    first = sorted(p.name for p in out.iterdir())
    api.decode_to_dicom(mr_lossy, out, overwrite=True)  # an earlier series: replaced when asked
    assert sorted(p.name for p in out.iterdir()) == first

    import pydicom.dataset

    def fail(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(pydicom.dataset.Dataset, "save_as", fail)
    with pytest.raises(OSError):
        api.decode_to_dicom(mr_lossy, tmp_path / "full")
    assert sorted(p.name for p in tmp_path.iterdir() if "full" in p.name) == []


def test_images_dicom_cannot_hold_are_refused_clearly(tmp_path):
    geometry = Geometry.identity(2)
    with pytest.raises(UnsupportedPixelTypeError, match="fractional"):
        write_series(np.full((4, 4), 0.5, np.float32), geometry, {}, tmp_path / "f")
    with pytest.raises(UnsupportedPixelTypeError, match="16 bits"):
        write_series(np.array([[0, 100000], [1, 2]], np.int32), geometry, {}, tmp_path / "w")
    with pytest.raises(MedcodecError, match="2D and 3D"):
        write_series(np.zeros((2, 2, 4, 4), np.int16), Geometry.identity(4), {}, tmp_path / "v")
    assert not any(tmp_path.iterdir())
    # a range that needs an intercept: stored values + Rescale Intercept give the values back
    wide = np.array([[-40000, -30000], [0, 20000]], np.int32)
    ds = pydicom.dcmread(write_series(wide, geometry, {}, tmp_path / "i")[0])
    np.testing.assert_array_equal(ds.pixel_array.astype(np.int64) + int(ds.RescaleIntercept), wide)


@pytest.mark.parametrize("syntax", ["explicit", "j2k"])
def test_multiframe_legacy_converted_enhanced(tmp_path, mr_series_dir, mr_lossy, tiny_model_id, syntax):
    files = api.decode_to_dicom(mr_lossy, tmp_path / "mf", DicomOptions(syntax, multiframe=True))
    assert len(files) == 1
    ds = pydicom.dcmread(files[0])
    assert ds.SOPClassUID == "1.2.840.10008.5.1.4.1.1.4.4"  # Legacy Converted Enhanced MR Image
    assert ds.NumberOfFrames == 2 and ds.LossyImageCompression == "01" and ds.ImageType[0] == "DERIVED"
    decoded, _ = api.decompress(mr_lossy)
    np.testing.assert_array_equal(ds.pixel_array, decoded)
    reference, gdcm = api.read(mr_lossy), sitk.ReadImage(str(files[0]))  # GDCM reads the functional groups
    np.testing.assert_array_equal(sitk.GetArrayFromImage(gdcm), decoded)
    for get in ("GetOrigin", "GetSpacing", "GetDirection"):
        np.testing.assert_allclose(getattr(gdcm, get)(), getattr(reference, get)(), atol=1e-4)
    for z, frame in enumerate(ds.PerFrameFunctionalGroupsSequence):
        np.testing.assert_allclose([float(v) for v in frame.PlanePositionSequence[0].ImagePositionPatient],
                                   reference.TransformIndexToPhysicalPoint((0, 0, z)), atol=1e-4)
    if DCIODVFY:
        before = set().union(*(_errors(f) for f in mr_series_dir.iterdir()))
        assert _errors(files[0]) <= before


def test_multiframe_needs_ct_or_mr(tmp_path, tiny_model_id):
    mlc = tmp_path / "v.mlc"
    api.compress(np.zeros((2, 16, 16), np.int16), mlc, iterations=1, model_id=tiny_model_id)
    with pytest.raises(MedcodecError, match="CT and MR"):
        api.decode_to_dicom(mlc, tmp_path / "out", DicomOptions(multiframe=True))
    assert not (tmp_path / "out").exists()
