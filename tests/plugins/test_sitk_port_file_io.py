"""SimpleITK's single-file IO tests on ``.mlc``, each beside its ``.mha`` twin.

Ported from SimpleITK v2.5.x ``Testing/Unit/sitkImageIOTests.cxx`` (``TEST(IO, ...)``) and
``Testing/Unit/Python/sitkImageReadWrite.py`` / ``IOTest.py``; each test names its source.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from medcodec.errors import MedcodecError

from .sitkport import FORMATS, close_geometry, count_events, mr_volume, same_pixels, sitk, write  # noqa: F401

IO_NAMES = {"mha": "MetaImageIO", "mlc": "MedcodecImageIO"}


# --- TEST(IO, ImageFileReader) ---------------------------------------------------------

@pytest.mark.parametrize("ext", FORMATS)
def test_reader_defaults_and_read(sitk, tmp_path, ext):
    """TEST(IO, ImageFileReader): defaults, LoadPrivateTags, name, read by class and function."""
    reader = sitk.ImageFileReader()
    assert reader.GetOutputPixelType() == sitk.sitkUnknown
    assert reader.GetLoadPrivateTags() is False
    reader.LoadPrivateTagsOn()
    assert reader.GetLoadPrivateTags() is True
    reader.SetLoadPrivateTags(False)
    assert reader.GetLoadPrivateTags() is False
    img = mr_volume(sitk)
    path = write(sitk, img, tmp_path / f"r.{ext}")
    reader.SetFileName(path)
    assert reader.GetFileName() == path
    assert sitk.Hash(reader.Execute()) == sitk.Hash(img)
    assert sitk.Hash(sitk.ReadImage(path)) == sitk.Hash(img)
    assert reader.GetName() == "ImageFileReader"
    assert "ImageFileReader" in str(reader)


@pytest.mark.parametrize("ext", FORMATS)
def test_read_with_output_pixel_type(sitk, tmp_path, ext):
    """TEST(IO, ImageFileReader): ReadImage(file, sitkInt32[, the right ImageIO])."""
    img = mr_volume(sitk)
    path = write(sitk, img, tmp_path / f"p.{ext}")
    expect = sitk.Cast(img, sitk.sitkInt32)
    for image in (sitk.ReadImage(path, sitk.sitkInt32), sitk.ReadImage(path, sitk.sitkInt32, IO_NAMES[ext])):
        assert image.GetPixelID() == sitk.sitkInt32
        assert sitk.Hash(image) == sitk.Hash(expect)


@pytest.mark.parametrize("ext", FORMATS)
@pytest.mark.parametrize("wrong_io", ["DoesNoExistImageIO", "GDCMImageIO"])
def test_read_with_wrong_image_io_raises(sitk, tmp_path, ext, wrong_io):
    """TEST(IO, ImageFileReader): a missing or unfit ImageIO raises."""
    path = write(sitk, mr_volume(sitk), tmp_path / f"w.{ext}")
    with pytest.raises(RuntimeError):
        sitk.ReadImage(path, sitk.sitkInt32, wrong_io)


@pytest.mark.parametrize("cls", ["ImageFileReader", "ImageFileWriter", "ImageSeriesReader", "ImageSeriesWriter"])
def test_registered_image_ios(sitk, cls):
    """TEST(IO, ImageFileReader/ImageFileWriter/SeriesReader/ImageSeriesWriter): GetRegisteredImageIOs."""
    ios = getattr(sitk, cls)().GetRegisteredImageIOs()
    assert "GDCMImageIO" in ios and "MetaImageIO" in ios and "MedcodecImageIO" in ios


# --- TEST(IO, ReadWriteInt64) and sitkImageReadWrite.py test_read_write_int64* -----------

def _int64_image(sitk, pixel):
    """sitkImageReadWrite.py ``_create_img``: values beyond 32 bits."""
    img = sitk.Image([64, 64], pixel)
    img[0, 1], img[0, 2], img[0, 3] = 1, 1000, 2**33
    if pixel == sitk.sitkInt64:
        img[1, 0], img[2, 0], img[3, 0] = -1, -100, -(2**34)
    return img


@pytest.mark.parametrize("pixel", ["sitkUInt64", "sitkInt64"])
def test_int64_reference_mha(sitk, tmp_path, pixel):
    """ReadWriteInt64 / test_read_write_int64mha: MetaImage keeps 64-bit integers."""
    img = _int64_image(sitk, getattr(sitk, pixel))
    path = write(sitk, img, tmp_path / "i.mha")
    back = sitk.ReadImage(path)
    assert back.GetPixelID() == img.GetPixelID() and sitk.Hash(back) == sitk.Hash(img)


@pytest.mark.parametrize("pixel", ["sitkUInt64", "sitkInt64"])
def test_int64_refused_by_mlc(sitk, tmp_path, pixel):
    """ReadWriteInt64 on .mlc: refused with a clear MedcodecError (README), no file left."""
    img = _int64_image(sitk, getattr(sitk, pixel))
    with pytest.raises(MedcodecError, match="int64 is not supported"):
        sitk.WriteImage(img, str(tmp_path / "i.mlc"))
    assert os.listdir(tmp_path) == []


# --- TEST(IO, ImageFileWriter): events --------------------------------------------------

@pytest.mark.parametrize("ext", FORMATS)
def test_writer_events(sitk, tmp_path, ext):
    """TEST(IO, ImageFileWriter): Start/End once, progress reaches 1, no abort/iteration/user."""
    writer = sitk.ImageFileWriter()
    writer.SetFileName(str(tmp_path / f"e.{ext}"))
    if ext == "mlc":
        writer.SetCompressor("lossless")
    counters = count_events(sitk, writer)
    writer.Execute(mr_volume(sitk))
    assert counters["Progress"].progress[-1] == 1.0 and writer.GetProgress() == 1.0
    assert [counters[n].count for n in ("Start", "End", "Abort", "Iteration", "User")] == [1, 1, 0, 0, 0]
    assert counters["Delete"].count == 1  # SimpleITK: the ITK filter of that Execute is gone
    assert writer.GetName() == "ImageFileWriter" and "ImageFileWriter" in str(writer)


@pytest.mark.parametrize("ext", FORMATS)
def test_reader_events(sitk, tmp_path, ext):
    """TEST(IO, ReadWrite): a read fires Start and End once and Progress up to 1."""
    path = write(sitk, mr_volume(sitk), tmp_path / f"e.{ext}")
    reader = sitk.ImageFileReader()
    reader.SetFileName(path)
    counters = count_events(sitk, reader)
    reader.Execute()
    assert [counters[n].count for n in ("Start", "End", "Abort", "Iteration", "User", "Delete")] == [1, 1, 0, 0, 0, 1]
    assert counters["Progress"].count >= 1 and reader.GetProgress() == 1.0
    reader.RemoveAllCommands()
    reader.Execute()
    assert counters["Start"].count == 1


def test_any_event_and_command_object(sitk, tmp_path):
    """sitkProcessObjectTest-style: sitkAnyEvent and a ``sitk.Command`` subclass both fire."""
    seen = []

    class Cmd(sitk.Command):
        def Execute(self):
            seen.append("cmd")

    writer = sitk.ImageFileWriter()
    cmd = Cmd()
    writer.AddCommand(sitk.sitkEndEvent, cmd)
    writer.AddCommand(sitk.sitkAnyEvent, lambda: seen.append("any"))
    writer.SetFileName(str(tmp_path / "a.mlc"))
    writer.Execute(mr_volume(sitk, (16, 16, 1)))
    assert seen.count("cmd") == 1 and seen.count("any") >= 3  # start, progress, end


# --- TEST(IO, ImageFileWriter_Compression) and test_write_procedure ----------------------

@pytest.mark.parametrize("compressor,level", [("does_not_exist", 10), ("gzip", 9), ("gzip", 1), ("JPEG", 50),
                                              ("packbits", 1), ("DEFLATE", 1), ("", 90)])
@pytest.mark.parametrize("ext", FORMATS)
def test_writer_compression_options_tolerated(sitk, tmp_path, ext, compressor, level):
    """TEST(IO, ImageFileWriter_Compression) / test_write_procedure: any compressor and level
    write. On .mlc another format's compressor means the default coding, and a level above
    the model's maximum is clamped: the file equals one written with that coding."""
    from medcodec_plugins.sitk_hook import ForeignCompressorWarning

    img = mr_volume(sitk, (32, 24, 2))
    writer = sitk.ImageFileWriter()
    assert writer.GetCompressor() == "" and writer.GetCompressionLevel() == -1
    path = str(tmp_path / f"c.{ext}")
    writer.SetFileName(path)
    writer.SetUseCompression(True)
    writer.SetCompressor(compressor)
    writer.SetCompressionLevel(level)
    if ext == "mlc" and compressor == "does_not_exist":
        with pytest.warns(ForeignCompressorWarning):
            writer.Execute(img)
    else:
        writer.Execute(img)
    assert writer.GetCompressor() == compressor and writer.GetCompressionLevel() == level
    back = sitk.ReadImage(path)
    assert close_geometry(back, img, 0)
    if ext == "mha":
        assert sitk.Hash(back) == sitk.Hash(img)
    else:
        from medcodec.model import checkpoint

        top = checkpoint.load_config(checkpoint.default_model_id()).max_iterations
        ref = str(tmp_path / "ref.mlc")
        sitk.WriteImage(img, ref, compressionLevel=min(level, top))
        assert same_pixels(sitk, back, sitk.ReadImage(ref))


def test_write_image_compression_keywords(sitk, tmp_path):
    """sitkImageReadWrite.py test_write_procedure: WriteImage(..., useCompression=True,
    compressor="DEFLATE", compressionLevel=1) and a series with compressionLevel=90."""
    img = mr_volume(sitk, (32, 32, 4))
    sitk.WriteImage(img[:, :, 0], str(tmp_path / "p_1.mlc"), useCompression=True, compressor="DEFLATE",
                    compressionLevel=1)
    assert sitk.ReadImage(str(tmp_path / "p_1.mlc")).GetSize() == (32, 32)
    fns = [str(tmp_path / f"p_series_{i}.mlc") for i in range(img.GetSize()[2])]
    sitk.WriteImage(img, fns, compressionLevel=90)
    back = sitk.ReadImage(fns, imageIO="MedcodecImageIO")
    assert close_geometry(back, img)


# --- TEST(IO, ReadWrite) and TEST(IO, 2DFormats) ----------------------------------------

@pytest.mark.parametrize("ext", FORMATS)
def test_read_write_read_hash(sitk, tmp_path, ext):
    """TEST(IO, ReadWrite): read, write, read again: same hash (lossless .mlc)."""
    src = write(sitk, mr_volume(sitk), tmp_path / f"a.{ext}")
    image = sitk.ImageFileReader().SetFileName(src) if False else sitk.ReadImage(src)
    out = write(sitk, image, tmp_path / f"b.{ext}")
    again = sitk.ReadImage(out)
    assert sitk.Hash(again) == sitk.Hash(image) and sitk.Hash(again, sitk.HashImageFilter.MD5) == \
        sitk.Hash(image, sitk.HashImageFilter.MD5)


@pytest.mark.parametrize("ext", FORMATS)
def test_2d_formats(sitk, tmp_path, ext):
    """TEST(IO, 2DFormats): a 2-D file reads as 2-D (width, height, depth 0)."""
    path = write(sitk, mr_volume(sitk)[:, :, 2], tmp_path / f"s.{ext}")
    image = sitk.ReadImage(path)
    assert image.GetDimension() == 2 and (image.GetWidth(), image.GetHeight(), image.GetDepth()) == (40, 32, 0)


@pytest.mark.parametrize("name", ["this.isafilenamewithnoimageio", "mlc", "x.mlc.unknown"])
def test_write_bad_name(sitk, tmp_path, name):
    """TEST(IO, Write_BadName) / IOTest.py: a name no ImageIO writes raises."""
    with pytest.raises(RuntimeError):
        sitk.WriteImage(sitk.Image(10, 10, sitk.sitkInt32), str(tmp_path / name))


# --- TEST(IO, ImageFileReader_ImageInformation) -----------------------------------------

@pytest.mark.parametrize("ext", FORMATS)
def test_no_information_before_read(sitk, tmp_path, ext):
    """TEST(IO, ImageFileReader_ImageInformation): empty answers until ReadImageInformation."""
    path = write(sitk, mr_volume(sitk), tmp_path / f"n.{ext}")
    reader = sitk.ImageFileReader()
    reader.SetFileName(path)
    assert reader.GetPixelID() == sitk.sitkUnknown and reader.GetPixelIDValue() == sitk.sitkUnknown
    assert (reader.GetDimension(), reader.GetNumberOfComponents()) == (0, 0)
    assert reader.GetOrigin() == reader.GetSpacing() == reader.GetDirection() == reader.GetSize() == ()
    for call in (reader.GetMetaDataKeys, lambda: reader.HasMetaDataKey("nothing"), lambda: reader.GetMetaData("nothing")):
        with pytest.raises(RuntimeError):
            call()


@pytest.mark.parametrize("ext", FORMATS)
def test_information_matches_image(sitk, tmp_path, ext):
    """TEST(IO, ImageFileReader_ImageInformation): the header answers equal the image's."""
    img = mr_volume(sitk)
    img.SetOrigin((-112.0, -21.687999, 126.894))
    img.SetSpacing((0.859375, 0.8593899, 1.6))
    img.SetMetaData("0008|0031", "153128")
    path = write(sitk, img, tmp_path / f"i.{ext}")
    reader = sitk.ImageFileReader()
    reader.SetFileName(path)
    reader.ReadImageInformation()
    image = reader.Execute()
    assert reader.GetPixelID() == image.GetPixelID() == sitk.sitkInt16
    assert reader.GetPixelIDValue() == image.GetPixelIDValue()
    assert reader.GetDimension() == image.GetDimension() == 3
    assert reader.GetNumberOfComponents() == image.GetNumberOfComponentsPerPixel() == 1
    assert np.allclose(reader.GetOrigin(), (-112, -21.687999, 126.894), atol=1e-6)
    assert np.allclose(reader.GetSpacing(), (0.859375, 0.8593899, 1.6), atol=1e-6)
    assert reader.GetOrigin() == image.GetOrigin() and reader.GetSpacing() == image.GetSpacing()
    assert reader.GetDirection() == image.GetDirection() and reader.GetSize() == image.GetSize()
    for key in reader.GetMetaDataKeys():
        assert reader.HasMetaDataKey(key) and image.HasMetaDataKey(key)
        assert reader.GetMetaData(key) == image.GetMetaData(key)
    assert reader.GetMetaData("0008|0031") == "153128"


def test_information_of_dicom_file_written_as_mlc(sitk, tmp_path, ct_small_path):
    """TEST(IO, ImageFileReader_ImageInformation) on a real DICOM file: the .mlc header
    answers what GDCM answers for the .dcm it came from."""
    dcm = sitk.ImageFileReader()
    dcm.SetFileName(str(ct_small_path))
    dcm.ReadImageInformation()
    path = write(sitk, sitk.ReadImage(str(ct_small_path)), tmp_path / "ct.mlc")
    mlc = sitk.ImageFileReader()
    mlc.SetFileName(path)
    mlc.ReadImageInformation()
    for getter in ("GetSize", "GetDimension", "GetNumberOfComponents", "GetPixelID", "GetOrigin", "GetSpacing",
                   "GetDirection"):
        assert getattr(mlc, getter)() == getattr(dcm, getter)(), getter
    assert mlc.GetMetaData("0008|0031") == dcm.GetMetaData("0008|0031")


@pytest.mark.parametrize("ext", FORMATS)
def test_reused_reader_rereads_header(sitk, tmp_path, ext):
    """ImageFileReader_ImageInformation, file rewritten under a reused reader: fresh answers."""
    path = write(sitk, mr_volume(sitk, (40, 32, 6)), tmp_path / f"u.{ext}")
    reader = sitk.ImageFileReader()
    reader.SetFileName(path)
    reader.ReadImageInformation()
    assert reader.GetSize() == (40, 32, 6)
    write(sitk, mr_volume(sitk, (24, 16, 3)), path)
    reader.ReadImageInformation()
    assert reader.GetSize() == (24, 16, 3)
    assert reader.Execute().GetSize() == (24, 16, 3)


# --- TEST(IO, ImageFileReader_SetImageIO) -----------------------------------------------

@pytest.mark.parametrize("ext", FORMATS)
def test_set_image_io(sitk, tmp_path, ext):
    """TEST(IO, ImageFileReader_SetImageIO): a missing or wrong ImageIO raises on both calls;
    the right one reads; GetImageIO answers what was set."""
    img = mr_volume(sitk)[:, :, 0]
    path = write(sitk, img, tmp_path / f"s.{ext}")
    reader = sitk.ImageFileReader()
    assert reader.GetImageIO() == ""
    reader.SetFileName(path)
    reader.SetImageIO("SomethingThatDoesNotExist")
    with pytest.raises(RuntimeError):
        reader.ReadImageInformation()
    with pytest.raises(RuntimeError):
        reader.Execute()
    assert reader.GetImageIO() == "SomethingThatDoesNotExist"
    reader.SetImageIO("NrrdImageIO")
    with pytest.raises(RuntimeError):
        reader.Execute()
    with pytest.raises(RuntimeError):
        reader.ReadImageInformation()
    reader.SetImageIO(IO_NAMES[ext])
    assert reader.GetImageIO() == IO_NAMES[ext]
    reader.ReadImageInformation()
    assert reader.GetSize() == (40, 32) and reader.GetDimension() == 2 and reader.GetNumberOfComponents() == 1
    image = reader.Execute()
    assert reader.GetImageIO() == IO_NAMES[ext] and sitk.Hash(image) == sitk.Hash(img)


def test_medcodec_image_io_refuses_other_files(sitk, tmp_path):
    """ImageFileReader_SetImageIO, the other way round: MedcodecImageIO on a .mha raises."""
    path = write(sitk, mr_volume(sitk), tmp_path / "m.mha")
    with pytest.raises(MedcodecError, match="not a .mlc file"):
        sitk.ReadImage(path, imageIO="MedcodecImageIO")


def test_writer_image_io_for_other_extension(sitk, tmp_path):
    """ImageFileWriter with imageIO="MedcodecImageIO" writes .mlc bytes under any name;
    they read back by content, as ITK picks an ImageIO that can read the file."""
    img = mr_volume(sitk)
    path = str(tmp_path / "volume.img")
    sitk.WriteImage(img, path, imageIO="MedcodecImageIO", compressor="lossless")
    assert open(path, "rb").read(4) == b"\x89MLC"
    assert sitk.ImageFileReader.GetImageIOFromFileName(path) == "MedcodecImageIO"
    assert sitk.Hash(sitk.ReadImage(path)) == sitk.Hash(img)
    assert sitk.Hash(sitk.ReadImage(path, imageIO="MedcodecImageIO")) == sitk.Hash(img)
    writer = sitk.ImageFileWriter()
    writer.SetImageIO("MedcodecImageIO")
    assert writer.GetImageIO() == "MedcodecImageIO"


@pytest.mark.parametrize("ext", FORMATS)
def test_writer_with_other_image_io_is_simpleitks(sitk, tmp_path, ext):
    """ImageFileWriter with an explicit ImageIO is SimpleITK's: MetaImageIO writes .mha bytes,
    an ImageIO that does not exist raises."""
    img = mr_volume(sitk)
    with pytest.raises(RuntimeError):
        sitk.WriteImage(img, str(tmp_path / f"x.{ext}"), imageIO="DoesNotExistImageIO")
    sitk.WriteImage(img, str(tmp_path / "ok.mha"), imageIO="MetaImageIO")
    assert sitk.Hash(sitk.ReadImage(str(tmp_path / "ok.mha"))) == sitk.Hash(img)


# --- TEST(IO, ImageFileReader_GetImageIOFromFileName) ------------------------------------

@pytest.mark.parametrize("cls", ["ImageFileReader", "ImageSeriesReader"])
@pytest.mark.parametrize("ext", FORMATS)
def test_image_io_from_file_name(sitk, tmp_path, cls, ext):
    """TEST(IO, ImageFileReader_GetImageIOFromFileName): the same answer from both classes,
    "" for a file that does not exist."""
    path = write(sitk, mr_volume(sitk), tmp_path / f"g.{ext}")
    klass = getattr(sitk, cls)
    assert klass.GetImageIOFromFileName(path) == IO_NAMES[ext]
    assert klass().GetImageIOFromFileName(path) == IO_NAMES[ext]
    assert klass.GetImageIOFromFileName(str(tmp_path / "file_does_not_exist")) == ""


# --- TEST(IO, ImageFileReader_Extract1) / (IO, ImageFileReader_Extract2) -----------------

@pytest.mark.parametrize("ext", FORMATS)
def test_extract1_2d(sitk, tmp_path, ext):
    """TEST(IO, ImageFileReader_Extract1): a 2-D region keeps the reader's full size; the
    region's origin moves with its index; pixels are the full image's."""
    full_image = mr_volume(sitk)[:, :, 3]
    path = write(sitk, full_image, tmp_path / f"x.{ext}")
    reader = sitk.ImageFileReader()
    assert reader.GetExtractIndex() == () and reader.GetExtractSize() == ()
    reader.SetFileName(path)
    reader.ReadImageInformation()
    assert reader.GetSize() == full_image.GetSize()
    reader.SetExtractSize((20, 20))
    one = reader.Execute()
    assert reader.GetSize() == full_image.GetSize() and one.GetSize() == (20, 20)
    assert one.GetOrigin() == full_image.GetOrigin() == reader.GetOrigin()
    assert one[0, 0] == full_image[0, 0] and one[13, 13] == full_image[13, 13]
    reader.SetExtractIndex((2, 2))
    two = reader.Execute()
    assert reader.GetSize() == full_image.GetSize() and two.GetOrigin() != full_image.GetOrigin()
    assert two[0, 0] == full_image[2, 2] and two[13, 13] == full_image[15, 15]


_EXTRACT2 = [  # (index, size, expected origin, expected spacing) from TEST(IO, ImageFileReader_Extract2)
    ((), (), (2.0, 4.0, 6.0), (1.0, 2.0, 3.0)),
    ((1, 2, 3), (2, 3, 5), (3.0, 8.0, 15.0), (1.0, 2.0, 3.0)),
    ((2, 3, 4), (0, 1, 2), (10.0, 18.0), (2.0, 3.0)),
    ((2, 5, 7), (3, 0, 5), (4.0, 27.0), (1.0, 3.0)),
    ((1, 3, 5), (3, 5, 0), (3.0, 10.0), (1.0, 2.0)),
]


@pytest.mark.parametrize("index,size,origin,spacing", _EXTRACT2)
@pytest.mark.parametrize("ext", FORMATS)
def test_extract2_regions_keep_metadata(sitk, tmp_path, ext, index, size, origin, spacing):
    """TEST(IO, ImageFileReader_Extract2): 3-D and collapsed regions give Extract's pixels,
    ITK's origin and spacing, and keep the metadata dictionary."""
    generated = mr_volume(sitk, (24, 20, 12))
    generated.SetOrigin((2.0, 4.0, 6.0))
    generated.SetSpacing((1.0, 2.0, 3.0))
    generated.SetDirection((1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0))
    generated.SetMetaData("MyKey", "my_value")
    path = write(sitk, generated, tmp_path / f"e.{ext}")
    reader = sitk.ImageFileReader()
    reader.SetFileName(path)
    reader.SetExtractIndex(index)
    reader.SetExtractSize(size)
    assert reader.GetExtractIndex() == index and reader.GetExtractSize() == size
    result = reader.Execute()
    expect = sitk.Extract(generated, size, index) if size else generated
    assert sitk.Hash(result) == sitk.Hash(expect)
    assert reader.HasMetaDataKey("MyKey") and reader.GetMetaData("MyKey") == "my_value"
    assert result.HasMetaDataKey("MyKey") and result.GetMetaData("MyKey") == "my_value"
    assert result.GetOrigin() == origin and result.GetSpacing() == spacing


# --- TEST(IO, ImageFileReader_5DExtract) and 5-D images ----------------------------------

def test_5d_reference_mha(sitk, tmp_path):
    """TEST(IO, ImageFileReader_5DExtract), reference: MetaImage stores 5-D images."""
    img = sitk.Image([4, 3, 2, 2, 2], sitk.sitkInt16)
    path = write(sitk, img, tmp_path / "f.mha")
    assert sitk.ReadImage(path).GetSize() == (4, 3, 2, 2, 2)


def test_5d_refused_by_mlc(sitk, tmp_path):
    """TEST(IO, ImageFileReader_5DExtract) on .mlc: 5-D is refused clearly (README); no file."""
    img = sitk.Image([4, 3, 2, 2, 2], sitk.sitkInt16)
    with pytest.raises(MedcodecError, match="2D, 3D or 4D"):
        sitk.WriteImage(img, str(tmp_path / "f.mlc"))
    assert os.listdir(tmp_path) == []


# --- sitkImageReadWrite.py: test_write_pathlib, test_path_type --------------------------

@pytest.mark.parametrize("ext", FORMATS)
def test_write_pathlib(sitk, tmp_path, ext):
    """sitkImageReadWrite.py test_write_pathlib: Path names for a file and a series."""
    img = sitk.Image([32, 32], sitk.sitkUInt8)
    img[10, 10] = 13
    path = Path(tmp_path) / f"write_pathlib.{ext}"
    sitk.WriteImage(img, path, compressor="lossless" if ext == "mlc" else "")
    assert sitk.Hash(sitk.ReadImage(path)) == sitk.Hash(img)
    paths = [Path(tmp_path) / f"write_pathlib_{i}.{ext}" for i in range(3)]
    sitk.WriteImage(sitk.Image([32, 32, 3], sitk.sitkUInt8), paths)
    assert all(p.exists() for p in paths)


@pytest.mark.parametrize("ext", FORMATS)
def test_path_type(sitk, tmp_path, ext):
    """sitkImageReadWrite.py test_path_type: writers take Path and report str names."""
    img = sitk.Image([32, 32], sitk.sitkUInt8)
    writer = sitk.ImageFileWriter()
    out_path = Path(tmp_path) / f"test_path_type.{ext}"
    writer.SetFileName(out_path)
    assert isinstance(writer.GetFileName(), str)
    writer.Execute(img)
    assert out_path.exists()
    series = sitk.ImageSeriesWriter()
    paths = [Path(tmp_path) / f"test_path_type_{i}.{ext}" for i in range(3)]
    series.SetFileNames(paths)
    assert all(isinstance(p, str) for p in series.GetFileNames())
    series.Execute(sitk.Image([32, 32, 3], sitk.sitkUInt8))
    assert all(p.exists() for p in paths)


# --- refusals: vector and label images ---------------------------------------------------

@pytest.mark.parametrize("ext", FORMATS)
def test_vector_image(sitk, tmp_path, ext):
    """TEST(IO, ImageFileReader) reads vector images (VectorInt16): .mha keeps them, .mlc
    refuses them clearly (scalar grayscale only)."""
    vec = sitk.Compose([mr_volume(sitk)] * 3)
    path = str(tmp_path / f"v.{ext}")
    if ext == "mha":
        sitk.WriteImage(vec, path)
        assert sitk.ReadImage(path).GetPixelID() == sitk.sitkVectorInt16
    else:
        with pytest.raises(MedcodecError, match="scalar grayscale"):
            sitk.WriteImage(vec, path)
        assert not os.path.exists(path)


def test_probe_magic_is_the_format_magic():
    """The hook probes files with its own copy of the magic bytes (no imports): the same."""
    from medcodec.format.spec import MAGIC
    from medcodec_plugins import sitk_hook

    assert sitk_hook._MAGIC == MAGIC


# --- ConcurrentImageRead.py --------------------------------------------------------------

@pytest.mark.parametrize("ext", FORMATS)
def test_threaded_read(sitk, tmp_path, ext):
    """ConcurrentImageRead.py test_threaded_read_*: files read by a thread pool join into
    the same volume as the images written (UInt32 Gaussian blobs; fewer, smaller files)."""
    from multiprocessing.pool import ThreadPool

    images, files = [], []
    for i in range(6):
        images.append(sitk.GaussianSource(sitk.sitkUInt32, [48, 48], mean=[256 * (i + 1)] * 2))
        files.append(write(sitk, images[-1], tmp_path / f"g_{i}.{ext}"))
    files *= 4
    with ThreadPool(4) as pool:
        img = sitk.JoinSeries(pool.map(sitk.ReadImage, files))
    assert img.GetSize()[2] == len(files)
    assert sitk.Hash(img) == sitk.Hash(sitk.JoinSeries(images * 4))
