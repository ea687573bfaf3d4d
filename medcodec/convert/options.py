"""Settings, work items and constants of a batch conversion."""

from __future__ import annotations

import dataclasses
import hashlib

from ..errors import InputError, MedcodecError
from ..io.dicom import DicomOptions
from ..options import EncodeOptions


MANIFEST_NAME = "medcodec-manifest.jsonl"
PARTIAL_DIR = ".medcodec-partial"  # temporaries, in DST (same filesystem: renames are atomic)
VOLUME_EXTENSIONS = (".nii.gz", ".nii", ".nrrd", ".nhdr", ".mha", ".mhd")
DICOM_EXTENSIONS = (".dcm", ".dicom", ".ima")
# single-file formats are renamed atomically; "dicom" is a folder of slices, renamed likewise
DECODE_FORMATS = ("nii.gz", "nii", "nrrd", "mha", "dicom")
DICOM_TAGS = ("all", "minimal", "none")  # which tags of a DICOM source an encode keeps
NOT_DICOM_NAMES = {"DICOMDIR"}

# DICOM attributes kept in the .mlc metadata (SimpleITK/GDCM keys "gggg|eeee")
DICOM_KEEP = {
    "0008|0016": "SOPClassUID", "0008|0020": "StudyDate", "0008|0030": "StudyTime",
    "0008|0050": "AccessionNumber", "0008|0060": "Modality", "0008|0070": "Manufacturer",
    "0008|1030": "StudyDescription", "0008|103e": "SeriesDescription",
    "0010|0010": "PatientName", "0010|0020": "PatientID", "0010|0030": "PatientBirthDate",
    "0010|0040": "PatientSex", "0018|0015": "BodyPartExamined", "0018|0050": "SliceThickness",
    "0018|0088": "SpacingBetweenSlices", "0020|000d": "StudyInstanceUID",
    "0020|000e": "SeriesInstanceUID", "0020|0010": "StudyID", "0020|0011": "SeriesNumber",
    "0020|0052": "FrameOfReferenceUID", "0028|0030": "PixelSpacing",
    "0028|1050": "WindowCenter", "0028|1051": "WindowWidth", "0028|1052": "RescaleIntercept",
    "0028|1053": "RescaleSlope", "0028|1054": "RescaleType",
}


class VerificationError(MedcodecError):
    """A converted output did not decode to what was encoded (geometry, pixels, quality)."""


@dataclasses.dataclass(frozen=True)
class ConvertOptions:
    """How to encode every item (one :class:`EncodeOptions`), the acceptance checks on each
    decoded output, and the safety switches of a batch conversion."""

    encode: EncodeOptions = EncodeOptions()
    min_psnr: float | None = None     # acceptance: an output below this PSNR is not kept
    accept_error: float | None = None  # acceptance: an output whose max abs error exceeds this is not kept
    overwrite: bool = False
    decode: bool = False              # .mlc -> fmt instead of images -> .mlc
    fmt: str = "nii.gz"
    dicom_tags: str = "all"           # of a DICOM source: every printable tag of the first slice,
                                      # DICOM_KEEP only, or none
    dicom: DicomOptions | None = None  # decode to DICOM: transfer syntax, tags (None: defaults)

    def __post_init__(self):
        if self.dicom_tags not in DICOM_TAGS:
            raise InputError(f"dicom_tags must be one of {', '.join(DICOM_TAGS)}, got {self.dicom_tags!r}")

    @property
    def iterations(self) -> int | None:
        """Learned iterations of every output (a target's cap; None: the model's maximum)."""
        return self.encode.iterations if self.encode.target is not None else self.encode.base_iterations


@dataclasses.dataclass(frozen=True)
class Item:
    """One unit of work: an input (file or DICOM series) and where its output goes."""

    id: str                        # stable: input path relative to SRC ('#UID' for a series)
    kind: str                      # 'file' | 'dicom-series' | 'dicom-file' | 'mlc' | 'unreadable'
    source: str                    # absolute input file or series folder
    output: str                    # absolute output file
    rel_output: str                # output relative to DST (posix)
    series_uid: str | None = None
    files: tuple[str, ...] = ()    # absolute input files (for bytes in)
    error: str | None = None       # why an 'unreadable' item cannot be read
    partial_dir: str = ""          # DST/.medcodec-partial


def short_hash(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8")).hexdigest()[:8]
