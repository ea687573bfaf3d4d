"""SimpleITK's series IO tests on ``.mlc``: ``ImageSeriesReader`` / ``ImageSeriesWriter``.

Ported from SimpleITK v2.5.x ``Testing/Unit/sitkImageIOTests.cxx`` (``TEST(IO, SeriesReader)``,
``DicomSeriesReader``, ``ImageSeriesReader_Spacing``, ``ImageSeriesWriter``,
``VectorImageSeriesWriter``). References: the same slices as ``.mha`` files read by
SimpleITK's own ImageSeriesReader, and real DICOM files read by GDCM.
"""

from __future__ import annotations

import os

import numpy as np
import pytest

from medcodec.errors import MedcodecError

from .sitkport import FORMATS, CaptureLogger, close_geometry, count_events, mr_volume, same_pixels, sitk, write  # noqa: F401

OBLIQUE = (0.9315861948025004, -0.04478473479720045, 0.3607512843810014, 0.09741073879527705, 0.9868434990004809,
           -0.12903897259295835, -0.3502260835813861, 0.15535197459199665, 0.923692294202789)


def slice_files(sitk, folder, ext, positions=None, direction=None, two_d=False, depth=1, size=(40, 32)):
    """Files of single slices (or ``depth``-slice slabs) of the MR crop, each with its own
    origin: slice i at ``positions[i]`` along the volume's third axis (index units)."""
    positions = list(range(4)) if positions is None else positions
    vol = mr_volume(sitk, size + (len(positions) * depth,))
    vol.SetSpacing((0.9, 0.8, 2.5))
    vol.SetOrigin((-30.0, 12.5, 40.0))
    if direction is not None:
        vol.SetDirection(direction)
    names = []
    for i, z in enumerate(positions):
        piece = vol[:, :, i * depth : (i + 1) * depth]
        piece.SetOrigin(vol.TransformContinuousIndexToPhysicalPoint((0.0, 0.0, float(z))))
        piece.SetMetaData("slice", str(i))
        if two_d:
            piece = piece[:, :, 0]
            piece.SetMetaData("slice", str(i))
        names.append(write(sitk, piece, os.path.join(folder, f"s{i:03d}.{ext}")))
    return names


def read_series(sitk, names, **settings):
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(names)
    for key, value in settings.items():
        getattr(reader, f"Set{key}")(value)
    return reader, reader.Execute()


# --- TEST(IO, SeriesReader) -------------------------------------------------------------

def test_series_reader_defaults(sitk):
    """TEST(IO, SeriesReader): no names raises; defaults; name and registered ImageIOs."""
    reader = sitk.ImageSeriesReader()
    with pytest.raises(RuntimeError):
        reader.Execute()
    assert reader.GetOutputPixelType() == sitk.sitkUnknown and len(reader.GetFileNames()) == 0
    assert reader.GetName() == "ImageSeriesReader" and "ImageSeriesReader" in str(reader)
    assert "MedcodecImageIO" in reader.GetRegisteredImageIOs()


@pytest.mark.parametrize("ext", FORMATS)
def test_series_reader_reads_and_reports(sitk, tmp_path, ext):
    """TEST(IO, SeriesReader): 3 then 4 files, events, output pixel type, size mismatch."""
    names = slice_files(sitk, tmp_path, ext, range(4), two_d=True)
    reader = sitk.ImageSeriesReader()
    counters = count_events(sitk, reader)
    reader.SetFileNames(names[:3])
    image = reader.Execute()
    assert len(reader.GetFileNames()) == 3 and image.GetDimension() == 3
    assert (image.GetWidth(), image.GetHeight(), image.GetDepth()) == (40, 32, 3)
    assert counters["Progress"].progress[-1] == 1.0
    assert [counters[n].count for n in ("Start", "End", "Abort", "Iteration", "User")] == [1, 1, 0, 0, 0]
    reader.SetFileNames(names)
    assert reader.Execute().GetDepth() == 4
    reader.SetOutputPixelType(sitk.sitkUInt8)
    assert reader.GetOutputPixelType() == sitk.sitkUInt8
    assert reader.Execute().GetPixelID() == sitk.sitkUInt8
    odd = write(sitk, mr_volume(sitk, (20, 20, 1))[:, :, 0], tmp_path / f"odd.{ext}")
    reader.SetFileNames(names + [odd])
    with pytest.raises(RuntimeError):
        reader.Execute()


# --- geometry: every layout, against the .mha twin ---------------------------------------

_LAYOUTS = {
    "axial_3d_slices": dict(),
    "axial_2d_slices": dict(two_d=True),
    "oblique_3d_slices": dict(direction=OBLIQUE),
    "non_uniform": dict(positions=[0, 1, 2, 4, 5]),
    "same_position": dict(positions=[2, 2, 2]),
    "slabs_to_4d": dict(depth=2),
    "one_file": dict(positions=[3]),
}


@pytest.mark.parametrize("layout", list(_LAYOUTS))
@pytest.mark.parametrize("settings", [{}, {"ReverseOrder": True}, {"ForceOrthogonalDirection": False}],
                         ids=["plain", "reverse", "not_orthogonal"])
def test_series_geometry_as_itk(sitk, tmp_path, layout, settings):
    """Series geometry built from each file's origin and direction exactly as ITK's
    ImageSeriesReader does for the same slices stored as .mha (z spacing from positions,
    oblique directions, ReverseOrder, ForceOrthogonalDirection, one file, 4-D from slabs)."""
    (tmp_path / "mha").mkdir()
    (tmp_path / "mlc").mkdir()
    ref_names = slice_files(sitk, str(tmp_path / "mha"), "mha", **_LAYOUTS[layout])
    names = slice_files(sitk, str(tmp_path / "mlc"), "mlc", **_LAYOUTS[layout])
    try:
        _, ref = read_series(sitk, ref_names, **settings)
    except RuntimeError as e:  # ITK: slabs with ForceOrthogonalDirection off give a singular direction
        assert "determinant is 0" in str(e)
        with pytest.raises(RuntimeError, match="determinant is 0"):
            read_series(sitk, names, **settings)
        return
    _, got = read_series(sitk, names, **settings)
    assert close_geometry(got, ref, 1e-9), (got.GetSpacing(), ref.GetSpacing(), got.GetOrigin(), ref.GetOrigin(),
                                            got.GetDirection(), ref.GetDirection())
    assert same_pixels(sitk, got, ref) and got.GetPixelID() == ref.GetPixelID()
    assert got.HasMetaDataKey("ITK_non_uniform_sampling_deviation") == \
        ref.HasMetaDataKey("ITK_non_uniform_sampling_deviation")


def test_axis_aligned_series_spacing_and_origin_are_real(sitk, tmp_path):
    """The issue's silent failure: one-slice 3-D files give the real z spacing and origin."""
    names = slice_files(sitk, str(tmp_path), "mlc")
    _, image = read_series(sitk, names)
    assert image.GetSpacing()[2] == pytest.approx(2.5) and image.GetOrigin()[2] == pytest.approx(40.0)


# --- TEST(IO, ImageSeriesReader_Spacing) ------------------------------------------------

@pytest.mark.parametrize("ext", FORMATS)
def test_spacing_warning_threshold(sitk, tmp_path, ext):
    """TEST(IO, ImageSeriesReader_Spacing): a 1e-5 mm offset of the last slice is below the
    default relative threshold (1e-4, no warning) and above 1e-24 ("nonuniformity")."""
    image = sitk.Image([10, 10, 3], sitk.sitkUInt8)
    image.SetSpacing((2.0, 3.0, 1.12999))
    names = []
    for i in range(3):
        piece = sitk.Extract(image, [10, 10, 1], [0, 0, i])
        if i == 2:
            o = piece.GetOrigin()
            piece.SetOrigin((o[0], o[1], o[2] + 1e-5))
        names.append(write(sitk, piece, tmp_path / f"{i:06d}.{ext}"))
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(names)
    assert reader.GetSpacingWarningRelThreshold() == pytest.approx(1e-4, abs=1e-10)
    capture = CaptureLogger(sitk)
    try:
        reader.Execute()
        assert capture.warnings == []
        reader.SetSpacingWarningRelThreshold(1e-24)
        assert reader.GetSpacingWarningRelThreshold() == pytest.approx(1e-24, abs=1e-10)
        reader.Execute()
    finally:
        capture.close()
    assert any("nonuniformity" in w for w in capture.warnings)


@pytest.mark.parametrize("ext", FORMATS)
def test_missing_slice_warns_by_default(sitk, tmp_path, ext):
    """ImageSeriesReader_Spacing with a missing slice: ITK warns at the default threshold."""
    names = slice_files(sitk, str(tmp_path), ext, positions=[0, 1, 2, 4])
    capture = CaptureLogger(sitk)
    try:
        _, image = read_series(sitk, names)
    finally:
        capture.close()
    assert [w for w in capture.warnings if "Non uniform sampling or missing slices detected" in w]
    assert image.HasMetaDataKey("ITK_non_uniform_sampling_deviation")


def test_warning_display_off_is_silent(sitk, tmp_path):
    """ProcessObject.GlobalWarningDisplayOff silences the .mlc series warning too."""
    names = slice_files(sitk, str(tmp_path), "mlc", positions=[0, 1, 3])
    capture = CaptureLogger(sitk)
    sitk.ProcessObject.GlobalWarningDisplayOff()
    try:
        read_series(sitk, names)
    finally:
        sitk.ProcessObject.GlobalWarningDisplayOn()
        capture.close()
    assert capture.warnings == []


# --- TEST(IO, DicomSeriesReader): real DICOM written file by file as .mlc ----------------

@pytest.fixture
def dicom_and_mlc(sitk, mr_series_dir, tmp_path):
    """The real two-slice MR DICOM series and its files written one by one as .mlc."""
    dcm = list(sitk.ImageSeriesReader.GetGDCMSeriesFileNames(str(mr_series_dir)))
    assert len(dcm) == 2
    out = tmp_path / "mlc"
    out.mkdir()
    mlc = [write(sitk, sitk.ReadImage(f), out / os.path.basename(f).replace(".dcm", ".mlc")) for f in dcm]
    return dcm, mlc


@pytest.mark.parametrize("reverse", [False, True])
def test_dicom_series_geometry_matches_gdcm(sitk, dicom_and_mlc, reverse):
    """TEST(IO, DicomSeriesReader): the .mlc list reads like GDCM's series, reversed too."""
    dcm, mlc = dicom_and_mlc
    _, ref = read_series(sitk, dcm, ReverseOrder=reverse)
    _, got = read_series(sitk, mlc, ReverseOrder=reverse)
    assert close_geometry(got, ref, 1e-9) and same_pixels(sitk, got, ref)


def test_dicom_series_reverse_order_changes_origin(sitk, dicom_and_mlc):
    """TEST(IO, DicomSeriesReader): ReverseOrder toggles; same size, spacing, pixel type and
    components, another origin; the direction changes as GDCM's does."""
    dcm, mlc = dicom_and_mlc
    reader = sitk.ImageSeriesReader()
    assert reader.GetReverseOrder() is False
    reader.SetReverseOrder(True)
    assert reader.GetReverseOrder() is True
    reader.ReverseOrderOff()
    assert reader.GetReverseOrder() is False
    _, forward = read_series(sitk, mlc)
    _, backward = read_series(sitk, mlc, ReverseOrder=True)
    _, gdcm_f = read_series(sitk, dcm)
    _, gdcm_b = read_series(sitk, dcm, ReverseOrder=True)
    assert forward.GetSize() == backward.GetSize() and forward.GetOrigin() != backward.GetOrigin()
    assert forward.GetSpacing() == backward.GetSpacing() and forward.GetPixelID() == backward.GetPixelID()
    assert forward.GetNumberOfComponentsPerPixel() == backward.GetNumberOfComponentsPerPixel()
    assert (forward.GetDirection() == backward.GetDirection()) == (gdcm_f.GetDirection() == gdcm_b.GetDirection())


def test_dicom_series_per_slice_metadata(sitk, dicom_and_mlc):
    """TEST(IO, DicomSeriesReader): MetaDataDictionaryArrayUpdate gives each file's keys;
    GDCM's values for the slice position and instance come back per slice."""
    dcm, mlc = dicom_and_mlc
    reader = sitk.ImageSeriesReader()
    assert reader.GetMetaDataDictionaryArrayUpdate() is False
    reader.MetaDataDictionaryArrayUpdateOn()
    assert reader.GetMetaDataDictionaryArrayUpdate() is True
    reader.SetFileNames(dcm)
    ref = reader.Execute()
    ref_dicts = [{k: reader.GetMetaData(i, k) for k in reader.GetMetaDataKeys(i)} for i in range(len(dcm))]
    reader.SetFileNames(mlc)
    image = reader.Execute()
    assert image.GetSize()[2] == ref.GetSize()[2] == 2
    for i in range(2):
        keys = reader.GetMetaDataKeys(i)
        assert len(keys) > 50
        for key in keys:
            assert reader.HasMetaDataKey(i, key)
            reader.GetMetaData(i, key)
        for tag in ("0020|0032", "0020|0013", "0008|0018"):
            assert reader.GetMetaData(i, tag) == ref_dicts[i][tag]
    assert not reader.HasMetaDataKey(0, "nothing")
    for call in (lambda: reader.GetMetaDataKeys(99), lambda: reader.HasMetaDataKey(99, "nothing"),
                 lambda: reader.GetMetaData(99, "nothing")):
        with pytest.raises(RuntimeError):
            call()


@pytest.mark.parametrize("ext", FORMATS)
def test_per_slice_metadata_needs_update_on(sitk, tmp_path, ext):
    """TEST(IO, DicomSeriesReader): without MetaDataDictionaryArrayUpdate the per-slice
    dictionaries are not kept, and asking for them raises (as SimpleITK does)."""
    names = slice_files(sitk, str(tmp_path), ext)
    reader, _ = read_series(sitk, names)
    with pytest.raises(RuntimeError):
        reader.GetMetaDataKeys(0)
    reader.MetaDataDictionaryArrayUpdateOn()
    reader.Execute()
    assert [reader.GetMetaData(i, "slice") for i in range(4)] == ["0", "1", "2", "3"]
    reader.ReverseOrderOn()
    reader.Execute()
    assert [reader.GetMetaData(i, "slice") for i in range(4)] == ["3", "2", "1", "0"]


def test_force_orthogonal_direction_toggles(sitk):
    """TEST(IO, DicomSeriesReader): ForceOrthogonalDirection defaults on and toggles."""
    reader = sitk.ImageSeriesReader()
    assert reader.GetForceOrthogonalDirection() is True
    reader.SetForceOrthogonalDirection(False)
    assert reader.GetForceOrthogonalDirection() is False
    reader.ForceOrthogonalDirectionOn()
    assert reader.GetForceOrthogonalDirection() is True


@pytest.mark.parametrize("ext", FORMATS)
def test_series_image_io(sitk, tmp_path, ext):
    """ReadImage(list, imageIO=...): the right ImageIO reads, one that does not exist raises."""
    names = slice_files(sitk, str(tmp_path), ext, two_d=True)
    right = {"mha": "MetaImageIO", "mlc": "MedcodecImageIO"}[ext]
    assert sitk.ReadImage(names, imageIO=right).GetSize() == (40, 32, 4)
    with pytest.raises(RuntimeError):
        sitk.ReadImage(names, imageIO="DoesNotExistImageIO")


def test_mixed_list_reads_like_all_mha(sitk, tmp_path):
    """A list of .mlc and .mha files stacks as the all-.mha list does."""
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    mha = slice_files(sitk, str(tmp_path / "a"), "mha", direction=OBLIQUE)
    mlc = slice_files(sitk, str(tmp_path / "b"), "mlc", direction=OBLIQUE)
    _, ref = read_series(sitk, mha)
    _, got = read_series(sitk, [mlc[0], mha[1], mlc[2], mha[3]])
    assert close_geometry(got, ref, 1e-9) and same_pixels(sitk, got, ref)


# --- TEST(IO, ImageSeriesWriter) and VectorImageSeriesWriter ---------------------------

def test_series_writer_defaults(sitk):
    """TEST(IO, ImageSeriesWriter): compression defaults and toggles."""
    writer = sitk.ImageSeriesWriter()
    assert writer.GetUseCompression() is False
    writer.UseCompressionOn()
    assert writer.GetUseCompression() is True
    writer.UseCompressionOff()
    assert writer.GetUseCompression() is False
    assert writer.GetCompressor() == "" and writer.GetCompressionLevel() == -1
    assert "ImageSeriesWriter" in str(writer)


@pytest.mark.parametrize("ext", FORMATS)
def test_series_writer_name_counts(sitk, tmp_path, ext):
    """TEST(IO, ImageSeriesWriter): no names, too many, too few raise; three write."""
    image = sitk.Image([10, 10, 3], sitk.sitkUInt8)
    writer = sitk.ImageSeriesWriter()
    with pytest.raises(RuntimeError):
        writer.Execute(image)
    names = [str(tmp_path / f"ImageSeriesWriter_{i}.{ext}") for i in range(1, 4)]
    writer.SetFileNames(names)
    assert len(writer.GetFileNames()) == 3
    writer.Execute(image)
    assert all(os.path.exists(n) for n in names)
    with pytest.raises(RuntimeError):
        sitk.WriteImage(image, names + [str(tmp_path / f"ImageSeriesWriter_4.{ext}")])
    with pytest.raises(RuntimeError):
        sitk.WriteImage(image, names[:1])
    writer.SetFileNames([])
    with pytest.raises(RuntimeError):
        writer.Execute(image)


@pytest.mark.parametrize("ext", FORMATS)
@pytest.mark.parametrize("dims", [(10, 10), (4, 4, 2, 2)])
def test_series_writer_refuses_non_3d(sitk, tmp_path, ext, dims):
    """ImageSeriesWriter (SimpleITK): only 3-D images are written as a series of slices."""
    image = sitk.Image(list(dims), sitk.sitkInt16)
    names = [str(tmp_path / f"n{i}.{ext}") for i in range(dims[-1])]
    with pytest.raises(RuntimeError):
        sitk.WriteImage(image, names)


def test_series_writer_keeps_the_volume_geometry(sitk, tmp_path):
    """ImageSeriesWriter on .mlc: each slice carries its 3-D position (the point SimpleITK
    computes for index (0, 0, i)), so the series reads back as the volume it came from."""
    vol = mr_volume(sitk, (40, 32, 5))
    vol.SetDirection(OBLIQUE)
    vol.SetOrigin((5.0, 6.0, 7.0))
    vol.SetMetaData("0008|0060", "MR")
    names = [str(tmp_path / f"w{i}.mlc") for i in range(5)]
    writer = sitk.ImageSeriesWriter()
    writer.SetFileNames(names)
    writer.SetCompressor("lossless")
    writer.Execute(vol)
    for i, name in enumerate(names):
        piece = sitk.ReadImage(name)
        assert np.allclose(piece.GetOrigin(), vol.TransformIndexToPhysicalPoint((0, 0, i)), atol=1e-9)
        assert piece.GetDirection() == vol.GetDirection() and piece.GetMetaData("0008|0060") == "MR"
    back = sitk.ReadImage(names)
    assert close_geometry(back, vol, 1e-9) and same_pixels(sitk, back, vol)


def test_series_writer_refuses_mixed_names(sitk, tmp_path):
    """A series is one format: .mlc names mixed with others raise a MedcodecError."""
    with pytest.raises(MedcodecError, match="one format"):
        sitk.WriteImage(sitk.Image([8, 8, 2], sitk.sitkUInt8), [str(tmp_path / "a.mlc"), str(tmp_path / "b.mha")])


@pytest.mark.parametrize("ext", FORMATS)
def test_vector_image_series_writer(sitk, tmp_path, ext):
    """TEST(IO, VectorImageSeriesWriter): .mha writes vector slices; .mlc refuses clearly."""
    image = sitk.Compose([sitk.Image([10, 10, 3], sitk.sitkUInt8)] * 3)
    names = [str(tmp_path / f"v{i}.{ext}") for i in range(3)]
    if ext == "mha":
        sitk.WriteImage(image, names)
        assert sitk.ReadImage(names).GetNumberOfComponentsPerPixel() == 3
    else:
        with pytest.raises(MedcodecError, match="scalar grayscale"):
            sitk.WriteImage(image, names)
        assert not any(os.path.exists(n) for n in names)


@pytest.mark.parametrize("ext", FORMATS)
def test_series_writer_events(sitk, tmp_path, ext):
    """TEST(IO, ImageSeriesWriter) events: Start and End once, progress up to 1."""
    writer = sitk.ImageSeriesWriter()
    counters = count_events(sitk, writer)
    writer.SetFileNames([str(tmp_path / f"e{i}.{ext}") for i in range(3)])
    writer.Execute(sitk.Image([10, 10, 3], sitk.sitkUInt8))
    assert [counters[n].count for n in ("Start", "End", "Abort")] == [1, 1, 0]
    assert writer.GetProgress() == 1.0


def test_series_writer_is_all_or_nothing(sitk, tmp_path):
    """A series write that fails on one slice names no file and keeps the old ones intact."""
    old = write(sitk, mr_volume(sitk, (16, 16, 1)), tmp_path / "s0.mlc")
    before = open(old, "rb").read()
    names = [old, str(tmp_path / "s1.mlc"), str(tmp_path / "missing" / "s2.mlc")]
    with pytest.raises(MedcodecError, match="does not exist"):
        sitk.WriteImage(mr_volume(sitk, (16, 16, 3)), names)
    assert sorted(os.listdir(tmp_path)) == ["s0.mlc"] and open(old, "rb").read() == before
