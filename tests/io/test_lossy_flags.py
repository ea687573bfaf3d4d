"""The DICOM lossy-compression attributes (PS3.3 C.7.6.1.1.5) a decoded image carries: the
rules are the standard's (once lossy, always "01"; one ratio and method per lossy step, in
order), checked on the pure functions and on real files through api.read / info."""

from __future__ import annotations

import os

import numpy as np
import pydicom
import SimpleITK as sitk

from medcodec import api
from medcodec.format import read_image_metadata
from medcodec.io import lossy_flags
from medcodec.io.lossy_flags import LOSSY, METHOD, RATIO


def test_lossless_source_and_lossless_file_say_00():
    assert lossy_flags.lossy_flags({}, lossless=True, ratio=2.5) == {LOSSY: "00"}
    assert lossy_flags.lossy_flags({LOSSY: "00"}, lossless=True, ratio=2.5) == {LOSSY: "00"}


def test_a_lossy_step_is_appended_to_earlier_ones():
    first = lossy_flags.lossy_flags({}, lossless=False, ratio=12.345)
    assert first == {LOSSY: "01", RATIO: "12.35", METHOD: "MEDCODEC"}
    earlier = {LOSSY: "01", RATIO: "10", METHOD: "ISO_10918_1"}
    assert lossy_flags.lossy_flags(earlier, lossless=False, ratio=3) == {
        LOSSY: "01", RATIO: "10\\3.00", METHOD: "ISO_10918_1\\MEDCODEC"}
    # a lossless re-encoding of a lossy image stays lossy, with the earlier step only
    assert lossy_flags.lossy_flags(earlier, lossless=True, ratio=3) == earlier


def test_values_fit_their_dicom_vrs():
    for ratio in (1.0, 123456.789, 3e15):
        assert len(lossy_flags.ratio_text(ratio)) <= 16  # DS
        float(lossy_flags.ratio_text(ratio))
    assert len(lossy_flags.METHOD_NAME) <= 16 and lossy_flags.METHOD_NAME.isupper()  # CS


def test_an_earlier_medcodec_note_is_replaced_not_stacked():
    stored = {"ITK_FileNotes": "FSL5.0"}
    once = lossy_flags.image_metadata(stored, lossless=False, ratio=8)
    assert once["ITK_FileNotes"] == "medcodec: lossy (8.00:1 MEDCODEC); FSL5.0"
    twice = lossy_flags.image_metadata(once, lossless=False, ratio=2)
    assert twice["ITK_FileNotes"] == "medcodec: lossy (8.00:1 MEDCODEC, then 2.00:1 MEDCODEC)"
    assert len(lossy_flags.image_metadata({}, False, 1e9)["ITK_FileNotes"]) < 80  # NIfTI descrip


def test_read_info_and_file_formats_carry_the_flags(tmp_path, ct_small_path, tiny_model_id):
    source = pydicom.dcmread(ct_small_path)
    raw_bytes = source.Rows * source.Columns * source.BitsAllocated // 8  # what DICOM's ratio measures
    lossy, lossless = tmp_path / "lossy.mlc", tmp_path / "lossless.mlc"
    image = sitk.ReadImage(str(ct_small_path))
    api.write(image, lossy, iterations=2, model_id=tiny_model_id)
    api.write(image, lossless, max_error=0, iterations=2, model_id=tiny_model_id)  # learned iterations: a preview

    decoded = api.read(lossy)
    assert decoded.GetMetaData(LOSSY) == "01" and decoded.GetMetaData(METHOD) == "MEDCODEC"
    ratio = float(decoded.GetMetaData(RATIO))
    assert abs(ratio / (raw_bytes / os.path.getsize(lossy)) - 1) < 0.01
    assert api.read(lossless).GetMetaData(LOSSY) == "00"
    assert not api.read(lossless).HasMetaDataKey(RATIO)
    # a preview of a lossless file skips its residual layer: lossy
    assert read_image_metadata(lossless, iterations=1)[LOSSY] == "01"
    assert api.info(lossy)["lossy_compression"].startswith("lossy (")
    assert api.info(lossless)["lossy_compression"] == "lossless"

    for ext in ("nrrd", "mha"):  # plain header fields
        sitk.WriteImage(decoded, str(tmp_path / f"d.{ext}"))
        assert sitk.ReadImage(str(tmp_path / f"d.{ext}")).GetMetaData(LOSSY) == "01"
    sitk.WriteImage(decoded, str(tmp_path / "d.nii"))  # NIfTI: the 80-byte description
    header = np.fromfile(tmp_path / "d.nii", np.uint8, 348)
    descrip = bytes(header[148:228]).split(b"\0")[0].decode()
    assert descrip.startswith("medcodec: lossy (") and "MEDCODEC" in descrip
