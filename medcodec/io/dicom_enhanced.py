"""One multi-frame DICOM file for a whole CT or MR volume: the Legacy Converted Enhanced CT / MR
Image IODs (PS3.3 A.70, A.71), which exist for turning a classic one-file-per-slice series
into one enhanced instance.

What the classic series holds per file goes into functional groups: pixel spacing, slice
thickness, orientation, window and rescale are shared by all frames; each frame has its
position and its place in one stack (the dimension index: stack 1, position in stack). The
Image Type follows the enhanced rules (value 2 is PRIMARY there; value 1 says DERIVED for a
lossy image); the lossy-compression attributes stay at the top level, as in the classic series.
"""

from __future__ import annotations

from ..errors import InputError

LEGACY_ENHANCED = {"CT": "1.2.840.10008.5.1.4.1.1.2.2", "MR": "1.2.840.10008.5.1.4.1.1.4.4"}
_FRAME_TYPE_SEQUENCE = {"CT": "CTImageFrameTypeSequence", "MR": "MRImageFrameTypeSequence"}
# per-file attributes of a classic image that the functional groups hold instead
_MOVED = ("ImagePositionPatient", "ImageOrientationPatient", "PixelSpacing", "SliceThickness", "SpacingBetweenSlices",
          "WindowCenter", "WindowWidth", "RescaleIntercept", "RescaleSlope", "RescaleType",
          "SliceLocation", "PixelAspectRatio")


def _item(**attributes):
    from pydicom.dataset import Dataset

    ds = Dataset()
    for name, value in attributes.items():
        setattr(ds, name, value)
    return ds


def enhanced_dataset(base, frames: int, positions: list[list[str]], thickness: str, lossy: bool):
    """The multi-frame dataset (pixel data aside) built from ``base``, a classic slice's
    attributes (:func:`medcodec.io.dicom.write_series`), for ``frames`` frames at ``positions``
    (Image Position (Patient) strings per frame), ``thickness`` the grid's z spacing (DS). InputError for modalities without a legacy
    converted enhanced IOD."""
    import copy

    from pydicom.sequence import Sequence
    from pydicom.uid import generate_uid

    modality = str(base.get("Modality", "")).strip()
    if modality not in LEGACY_ENHANCED:
        raise InputError(f"multi-frame DICOM output is defined for CT and MR (Legacy Converted Enhanced "
                         f"CT/MR); this image's modality is {modality or 'unknown'}: write one file per slice")
    ds = copy.deepcopy(base)
    moved = {name: ds.get(name) for name in _MOVED if name in ds}
    for name in moved:
        delattr(ds, name)
    ds.SOPClassUID = LEGACY_ENHANCED[modality]
    ds.NumberOfFrames = frames
    source_first = [str(v) for v in base.ImageType][:1]
    first = "DERIVED" if lossy or source_first != ["ORIGINAL"] else "ORIGINAL"
    ds.ImageType = [first, "PRIMARY", "VOLUME", "NONE"]
    described = dict(PixelPresentation="MONOCHROME", VolumetricProperties="VOLUME",
                     VolumeBasedCalculationTechnique="NONE")
    for name, value in described.items():
        setattr(ds, name, value)
    ds.PresentationLUTShape = "IDENTITY"
    ds.ContentDate = ds.get("ContentDate") or ds.get("StudyDate") or ds.InstanceCreationDate
    ds.ContentTime = ds.get("ContentTime") or ds.get("StudyTime") or ds.InstanceCreationTime
    ds.AcquisitionContextSequence = Sequence([])

    frame_type = _item(FrameType=list(ds.ImageType), **described)
    if modality == "MR":
        frame_type.ComplexImageComponent, frame_type.AcquisitionContrast = "MAGNITUDE", "UNKNOWN"
    measures = _item(PixelSpacing=moved["PixelSpacing"], SliceThickness=moved.get("SliceThickness") or thickness,
                     SpacingBetweenSlices=thickness)  # the grid's z spacing (one frame has no second position)
    shared = _item(PixelMeasuresSequence=Sequence([measures]),
                   PlaneOrientationSequence=Sequence([_item(ImageOrientationPatient=moved["ImageOrientationPatient"])]),
                   UnassignedSharedConvertedAttributesSequence=Sequence([_item()]))
    setattr(shared, _FRAME_TYPE_SEQUENCE[modality], Sequence([frame_type]))
    if moved.get("WindowCenter") is not None and moved.get("WindowWidth") is not None:
        shared.FrameVOILUTSequence = Sequence([_item(WindowCenter=moved["WindowCenter"],
                                                     WindowWidth=moved["WindowWidth"])])
    if modality == "CT" or moved.get("RescaleIntercept") is not None:
        shared.PixelValueTransformationSequence = Sequence([_item(
            RescaleIntercept=moved.get("RescaleIntercept") or "0", RescaleSlope=moved.get("RescaleSlope") or "1",
            RescaleType=moved.get("RescaleType") or ("HU" if modality == "CT" else "US"))])
    ds.SharedFunctionalGroupsSequence = Sequence([shared])
    ds.PerFrameFunctionalGroupsSequence = Sequence([
        _item(PlanePositionSequence=Sequence([_item(ImagePositionPatient=position)]),
              FrameContentSequence=Sequence([_item(StackID="1", InStackPositionNumber=z + 1,
                                                   DimensionIndexValues=[1, z + 1])]),
              UnassignedPerFrameConvertedAttributesSequence=Sequence([_item()]))
        for z, position in enumerate(positions)])
    organization = generate_uid()
    ds.DimensionOrganizationSequence = Sequence([_item(DimensionOrganizationUID=organization)])
    frame_content = 0x00209111  # Frame Content Sequence: where the stack indices live
    ds.DimensionIndexSequence = Sequence([
        _item(DimensionOrganizationUID=organization, DimensionIndexPointer=pointer, FunctionalGroupPointer=frame_content)
        for pointer in (0x00209056, 0x00209057)])  # Stack ID, In-Stack Position Number
    return ds

