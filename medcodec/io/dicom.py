"""Writing a decoded image as a DICOM series: one file per slice, with the source's tags,
new UIDs and honest lossy-compression attributes.

The tags come from the ``.mlc`` metadata (SimpleITK's ``gggg|eeee`` keys, kept at encode
time from the first slice of a DICOM source). What describes one instance or the pixel data
is made anew: SOP Instance UIDs, a new Series Instance UID, Instance Number, Image Position /
Orientation (from the volume geometry), the Image Pixel module (pixel representation and
bits from the values) and Rescale Intercept/Slope (stored values are the decoded ones, or
shifted by an integer intercept when they need it). Lossy images get ``ImageType``
DERIVED\\SECONDARY and (0028,2110)/(0028,2112)/(0028,2114) from :mod:`.lossy_flags`.

The series is written into a hidden temporary folder beside the target and renamed onto it,
so a failure never leaves a partial series. Needs pydicom; the JPEG-LS and JPEG 2000
lossless transfer syntaxes need ``medcodec[dicom]``.
"""

from __future__ import annotations

import copy
import dataclasses
import os
import shutil
from pathlib import Path

import numpy as np

from ..errors import InputError, UnsupportedPixelTypeError, WriteError
from . import lossy_flags
from .images import Geometry

# --transfer-syntax choice -> (pydicom UID name, what to install if its encoder is missing)
TRANSFER_SYNTAXES = {
    "explicit": ("ExplicitVRLittleEndian", ""),
    "rle": ("RLELossless", ""),
    "jpeg-ls": ("JPEGLSLossless", "pip install 'medcodec[dicom]' (pyjpegls)"),
    "j2k": ("JPEG2000Lossless", "pip install 'medcodec[dicom]' (pylibjpeg-openjpeg)"),
}
SECONDARY_CAPTURE = "1.2.840.10008.5.1.4.1.1.7"
CT_IMAGE = "1.2.840.10008.5.1.4.1.1.2"
# made anew for every instance, or describing the pixel data: never copied from the source
_PER_INSTANCE = {"0008|0008", "0008|0012", "0008|0013", "0008|0018", "0020|000e", "0020|0013",
                 "0020|0032", "0020|0037", "0020|1041", "0008|2111"}
# of enhanced (multi-frame) sources: these describe their frames, not a classic slice
_ENHANCED_ONLY = {0x00089205, 0x00089206, 0x00089207, 0x00089208, 0x00089209, 0x00189004, 0x00189005,
                  0x00209162, 0x00209164, 0x00209165, 0x00209167, 0x00209170, 0x00209171, 0x00209172,
                  0x00209212, 0x00209213, 0x00209221, 0x00209222, 0x00209228, 0x00209238, 0x00209241}
# classic single-frame storage class of each modality, for sources stored as enhanced multi-frame
CLASSIC = {"CT": CT_IMAGE, "MR": "1.2.840.10008.5.1.4.1.1.4", "PT": "1.2.840.10008.5.1.4.1.1.128"}
ENHANCED_CLASSES = {"1.2.840.10008.5.1.4.1.1.2.1", "1.2.840.10008.5.1.4.1.1.2.2", "1.2.840.10008.5.1.4.1.1.4.1",
                    "1.2.840.10008.5.1.4.1.1.4.4", "1.2.840.10008.5.1.4.1.1.130", "1.2.840.10008.5.1.4.1.1.128.1"}
_BINARY_VRS = {"OB", "OW", "OF", "OD", "OL", "OV", "UN", "SQ", "AT"}
_INT_VRS = {"US", "SS", "UL", "SL", "UV", "SV"}
_FLOAT_VRS = {"FL", "FD"}


@dataclasses.dataclass(frozen=True)
class DicomOptions:
    """How a DICOM series is written: the transfer syntax (a key of ``TRANSFER_SYNTAXES``),
    whether the source's tags are kept (else only what the IOD needs is written), and one
    multi-frame file (Legacy Converted Enhanced CT/MR, :mod:`.dicom_enhanced`) instead of
    one file per slice."""

    transfer_syntax: str = "explicit"
    keep_tags: bool = True
    multiframe: bool = False

    def __post_init__(self):
        if self.transfer_syntax not in TRANSFER_SYNTAXES:
            raise InputError(f"transfer syntax must be one of {', '.join(TRANSFER_SYNTAXES)}, "
                             f"got {self.transfer_syntax!r}")


def _pydicom():
    try:
        import pydicom
    except ImportError as e:  # a core dependency; only a broken install lacks it
        raise WriteError(f"DICOM output needs pydicom ({e}); pip install pydicom") from e
    return pydicom


def stored_values(array: np.ndarray) -> tuple[np.ndarray, int]:
    """(16- or 8-bit stored values, integer Rescale Intercept) with array = stored + intercept.

    Integer-valued arrays only (medcodec's outputs of integer images): a float image would
    need a lossy requantisation, which is refused rather than done silently.
    """
    if array.dtype.kind == "f":
        if not np.all(np.isfinite(array)) or not np.array_equal(array, np.round(array)):
            raise UnsupportedPixelTypeError(
                "DICOM output holds integer pixel values; this image has fractional values "
                "(a float image): decode it to .nii.gz, .nrrd or .mha instead")
    elif array.dtype.kind not in "iub":
        raise UnsupportedPixelTypeError(f"DICOM output cannot hold {array.dtype} pixels")
    lo, hi = (int(array.min()), int(array.max())) if array.size else (0, 0)
    if array.dtype.itemsize == 1 and array.dtype.kind == "u":
        return array.astype(np.uint8), 0
    if lo >= -32768 and hi <= 32767 and (lo < 0 or array.dtype.kind == "i"):
        return array.astype(np.int16), 0
    if lo >= 0 and hi <= 65535:
        return array.astype(np.uint16), 0
    if hi - lo <= 65535:
        return (array.astype(np.int64) - lo).astype(np.uint16), lo
    raise UnsupportedPixelTypeError(f"values {lo}..{hi} span more than 16 bits; DICOM output "
                                    "holds 16-bit pixels: decode to .nii.gz, .nrrd or .mha instead")


def _bits_stored(stored: np.ndarray, source_bits: str | None) -> int:
    """The source's Bits Stored (e.g. 12) when every value fits in it, else Bits Allocated."""
    allocated = 8 * stored.itemsize
    lo, hi = (int(stored.min()), int(stored.max())) if stored.size else (0, 0)
    if stored.dtype.kind == "i":
        need = 1 + max(hi.bit_length(), (-lo - 1).bit_length() if lo < 0 else 0)
    else:
        need = max(1, hi.bit_length())
    try:
        source = int(str(source_bits).strip())
    except ValueError:
        return allocated
    return source if need <= source <= allocated else allocated


def _element_value(vr: str, text: str):
    values = [v.strip(" \x00") for v in text.split("\\")]
    if vr in _INT_VRS:
        out = [int(v) for v in values]
    elif vr in _FLOAT_VRS:
        out = [float(v) for v in values]
    else:
        return "\\".join(values) if vr not in ("LT", "ST", "UT") else text.rstrip(" \x00")
    return out[0] if len(out) == 1 else out


def _copy_tags(ds, metadata: dict[str, str]) -> None:
    """Public (even-group) attributes of the source whose VR is known and textual or numeric."""
    from pydicom.datadict import dictionary_VR
    from pydicom.tag import Tag

    for key, text in metadata.items():
        group, sep, element = key.partition("|")
        if not sep or len(group) != 4 or len(element) != 4 or key.lower() in _PER_INSTANCE:
            continue
        try:
            tag = Tag(int(group, 16), int(element, 16))
        except ValueError:
            continue
        if tag.group % 2 or tag.group in (0x0002, 0x0028, 0x7FE0, 0xFFFC, 0xFFFE) \
                or 0x6000 <= tag.group <= 0x601E or tag in _ENHANCED_ONLY:
            continue  # private, pixel/encoding, overlay planes (their data is not kept), enhanced-only
        try:
            vr = dictionary_VR(tag)
        except KeyError:
            continue
        if vr in _BINARY_VRS or " or " in vr:
            continue
        try:
            ds.add_new(tag, vr, _element_value(vr, text))
        except (ValueError, TypeError, OverflowError):
            continue  # a value pydicom would not write as that VR: left out, not mangled


def _direction(geometry: Geometry) -> np.ndarray:
    n = len(geometry.spacing)
    d = np.asarray(geometry.direction, float).reshape(n, n)
    if n == 2:
        full = np.eye(3)
        full[:2, :2] = d
        return full
    return d


def _base_dataset(metadata: dict[str, str], options: DicomOptions, lossy: bool):
    """The attributes every slice shares (no pixel data, no per-instance values)."""
    pydicom = _pydicom()
    from pydicom.uid import generate_uid

    ds = pydicom.Dataset()
    from_dicom = "0008|0016" in metadata
    if options.keep_tags and from_dicom:
        _copy_tags(ds, metadata)
    elif not from_dicom:
        ds.Laterality = None  # type 2C in General Series; unknown for a converted image
    keep = metadata if from_dicom else {}
    ds.SOPClassUID = keep.get("0008|0016", SECONDARY_CAPTURE).strip() or SECONDARY_CAPTURE
    if ds.SOPClassUID in ENHANCED_CLASSES:  # slices of an enhanced source become a classic series
        ds.SOPClassUID = CLASSIC.get(keep.get("0008|0060", "").strip(), SECONDARY_CAPTURE)
        for name in ("Laterality",) + (("KVP", "AcquisitionNumber") if ds.SOPClassUID == CT_IMAGE else ()):
            if name not in ds:
                setattr(ds, name, None)  # type 2: held in the enhanced source's functional groups
    for key, name in (("0008|0060", "Modality"), ("0020|000d", "StudyInstanceUID"),
                      ("0020|0052", "FrameOfReferenceUID")):
        if name not in ds:
            value = keep.get(key, "").strip()
            ds.add_new(pydicom.datadict.tag_for_keyword(name), pydicom.datadict.dictionary_VR(name),
                       value or ("OT" if name == "Modality" else generate_uid()))
    for name in ("PatientName", "PatientID", "PatientBirthDate", "PatientSex", "StudyDate", "StudyTime",
                 "ReferringPhysicianName", "StudyID", "AccessionNumber", "SeriesNumber", "Manufacturer",
                 "PositionReferenceIndicator", "PatientOrientation"):
        if name not in ds and not (name == "PatientOrientation" and ds.SOPClassUID != SECONDARY_CAPTURE):
            setattr(ds, name, None)  # type 2: present, may be empty
    if ds.SOPClassUID == SECONDARY_CAPTURE and "ConversionType" not in ds:
        ds.ConversionType = "WSD"
    ds.SeriesInstanceUID = generate_uid()
    ds.SpecificCharacterSet = keep.get("0008|0005", "ISO_IR 100").strip() or "ISO_IR 100"
    source_type = [v.strip() for v in keep.get("0008|0008", "").split("\\") if v.strip()]
    # lossy: derived, with the source's further values (CT's AXIAL, an MR's M\\SE, ...)
    ds.ImageType = ["DERIVED", "SECONDARY"] + source_type[2:] if lossy or not source_type else source_type
    flags = {k: v for k, v in metadata.items() if k in lossy_flags.KEYS}
    ds.LossyImageCompression = flags.get(lossy_flags.LOSSY, "00")
    if lossy_flags.RATIO in flags:
        ds.LossyImageCompressionRatio = flags[lossy_flags.RATIO].split("\\")
        ds.LossyImageCompressionMethod = flags[lossy_flags.METHOD].split("\\")
    if lossy:
        ds.DerivationDescription = ("Lossy compression: " + lossy_flags.summary(flags))[:1024]
    return ds


def _pixel_module(ds, stored: np.ndarray, intercept: int, metadata: dict[str, str], modality_lut: bool):
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    if metadata.get("0028|0004", "").strip() == "MONOCHROME1":
        ds.PhotometricInterpretation = "MONOCHROME1"  # the source's display convention
    ds.Rows, ds.Columns = stored.shape[-2:]
    ds.BitsAllocated = 8 * stored.itemsize
    ds.BitsStored = _bits_stored(stored, metadata.get("0028|0101"))
    ds.HighBit = ds.BitsStored - 1
    ds.PixelRepresentation = 1 if stored.dtype.kind == "i" else 0
    for key, name in (("0028|1050", "WindowCenter"), ("0028|1051", "WindowWidth")):
        if metadata.get(key, "").strip():
            setattr(ds, name, metadata[key].strip().split("\\"))
    if modality_lut or intercept:
        ds.RescaleIntercept = str(intercept)
        ds.RescaleSlope = "1"
        if metadata.get("0028|1054", "").strip():
            ds.RescaleType = metadata["0028|1054"].strip()


def check_target(folder: str | os.PathLike, overwrite: bool = False) -> Path:
    """Refuse a target folder that is a file, holds anything but a .dcm series, or (without
    ``overwrite``) already holds one; checked before any work is done."""
    folder = Path(folder)
    if folder.exists():
        if not folder.is_dir():
            raise WriteError(f"{folder} exists and is not a folder; DICOM output is a folder of slices")
        others = [p.name for p in folder.iterdir() if not p.name.lower().endswith(".dcm")]
        if others:
            raise WriteError(f"{folder} holds files other than .dcm ({others[0]}, ...); "
                             "give a new or empty folder")
        if any(folder.iterdir()) and not overwrite:
            raise WriteError(f"{folder} already holds a DICOM series; use --force to replace it")
    elif not folder.parent.is_dir():
        raise WriteError(f"output folder {folder.parent} does not exist")
    return folder


def write_series(array: np.ndarray, geometry: Geometry, metadata: dict[str, str], folder: str | os.PathLike,
                 options: DicomOptions = DicomOptions(), overwrite: bool = False) -> list[Path]:
    """Write a 2D (Y, X) or 3D (Z, Y, X) image as one DICOM file per slice in ``folder`` (or one
    multi-frame file, ``options.multiframe``).

    ``metadata`` is the decoded image's (:func:`medcodec.format.read_image_metadata`: the
    source's tags and the lossy-compression attributes). ``folder`` must be new, empty, or
    (with ``overwrite``) hold only a previous ``.dcm`` series. Returns the file paths, in
    slice order (names ``IM00001.dcm``, ...).
    """
    pydicom = _pydicom()
    from pydicom.uid import generate_uid

    if array.ndim not in (2, 3):
        raise InputError(f"DICOM output holds 2D and 3D images; this one has {array.ndim} dimensions "
                         "(decode it to .nii.gz, .nrrd or .mha)")
    folder = check_target(folder, overwrite)
    uid_name, needs = TRANSFER_SYNTAXES[options.transfer_syntax]
    syntax = getattr(pydicom.uid, uid_name)
    stored, intercept = stored_values(array)
    stored = stored.reshape((-1,) + stored.shape[-2:])
    lossy = metadata.get(lossy_flags.LOSSY) == "01"
    base = _base_dataset(metadata, options, lossy)
    modality_lut = base.SOPClassUID == CT_IMAGE or "0028|1052" in metadata
    _pixel_module(base, stored, intercept, metadata, modality_lut)
    d = _direction(geometry)
    spacing = tuple(geometry.spacing) + (1.0,) * (3 - len(geometry.spacing))
    origin = np.asarray(tuple(geometry.origin) + (0.0,) * (3 - len(geometry.origin)), float)
    base.ImageOrientationPatient = [_ds(v) for v in (*d[:, 0], *d[:, 1])]
    base.PixelSpacing = [_ds(spacing[1]), _ds(spacing[0])]
    if "SliceThickness" not in base and len(geometry.spacing) == 3:
        base.SliceThickness = _ds(spacing[2])
    positions = [[_ds(v) for v in origin + z * spacing[2] * d[:, 2]] for z in range(len(stored))]
    base.InstanceCreationDate, base.InstanceCreationTime = _now()
    if options.multiframe:
        from .dicom_enhanced import enhanced_dataset

        instances = [(enhanced_dataset(base, len(stored), positions, _ds(spacing[2]), lossy), stored)]
    else:
        instances = (_classic_slice(base, z, position, plane)
                     for z, (position, plane) in enumerate(zip(positions, stored)))
    width = max(5, len(str(len(stored))))
    tmp = folder.with_name(f".{folder.name}.{os.getpid()}-{os.urandom(3).hex()}.part")
    tmp.mkdir()
    names = []
    try:
        for number, (ds, pixels) in enumerate(instances, start=1):
            ds.SOPInstanceUID = generate_uid()
            ds.InstanceNumber = number
            ds.file_meta = _file_meta(ds)
            pixels = np.ascontiguousarray(pixels)
            ds.PixelData = pixels.tobytes()
            ds["PixelData"].VR = "OB" if pixels.itemsize == 1 else "OW"
            if syntax != pydicom.uid.ExplicitVRLittleEndian:  # one frame: pydicom wants (rows, columns)
                _compress(ds, syntax, pixels.reshape(pixels.shape[-2:]) if pixels.size == ds.Rows * ds.Columns
                          else pixels, options.transfer_syntax, needs)
            name = f"IM{number:0{width}d}.dcm"
            ds.save_as(tmp / name, enforce_file_format=True)
            names.append(name)
        place_series(tmp, folder, overwrite)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return [folder / n for n in names]


def _classic_slice(base, z: int, position: list[str], plane: np.ndarray):
    """(dataset, pixels) of slice ``z`` of a one-file-per-slice series."""
    ds = copy.deepcopy(base)
    ds.ImagePositionPatient = position
    return ds, plane


def _file_meta(ds):
    pydicom = _pydicom()
    meta = pydicom.dataset.FileMetaDataset()
    meta.MediaStorageSOPClassUID = ds.SOPClassUID
    meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    meta.ImplementationClassUID = IMPLEMENTATION_UID
    meta.ImplementationVersionName = "MEDCODEC"
    meta.TransferSyntaxUID = pydicom.uid.ExplicitVRLittleEndian
    return meta


def _compress(ds, syntax, plane: np.ndarray, choice: str, needs: str) -> None:
    try:
        ds.compress(syntax, plane, generate_instance_uid=False)
    except (RuntimeError, ImportError, ValueError, NotImplementedError) as e:
        if "unavailable" in str(e) and needs:
            raise WriteError(f"the {choice} transfer syntax needs its encoder: {needs}") from e
        raise WriteError(f"cannot write the {choice} transfer syntax: {str(e).splitlines()[0]}") from e


def place_series(tmp: str | os.PathLike, folder: str | os.PathLike, overwrite: bool = False) -> None:
    """Give a complete series folder ``tmp`` (same filesystem) the name ``folder``: a missing or
    empty folder, or (with ``overwrite``) one holding only an earlier series, removed after."""
    tmp, folder = Path(tmp), check_target(folder, overwrite)
    old = None
    if folder.exists() and any(folder.iterdir()):
        old = folder.with_name(f".{folder.name}.{os.getpid()}-{os.urandom(3).hex()}.old")
        os.rename(folder, old)
    try:
        os.rename(tmp, folder)  # onto a missing or empty folder
    except OSError as e:
        if old is not None:
            os.rename(old, folder)
        raise WriteError(f"cannot write {folder}: {e.strerror or e}") from e
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _ds(value: float) -> str:
    """A Decimal String: as many significant digits as its 16 characters hold."""
    value = float(value)
    for digits in range(12, 0, -1):
        text = f"{value:.{digits}g}"
        if len(text) <= 16:
            return text
    raise WriteError(f"{value} does not fit a DICOM decimal string")


def _now() -> tuple[str, str]:
    import time

    t = time.localtime()
    return time.strftime("%Y%m%d", t), time.strftime("%H%M%S", t)


# medcodec's implementation UID, the same in every release: 2.25 + the integer of
# uuid5(NAMESPACE_URL, "https://pypi.org/project/medcodec/#implementation")
IMPLEMENTATION_UID = "2.25.318376114342287693091495543729500627005"
