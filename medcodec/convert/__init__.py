"""Batch conversion of whole archives: ``medcodec convert SRC DST`` on one machine or a Dask cluster.

* :func:`discover` walks SRC and returns :class:`Item` s with stable ids and output paths:
  DICOM series (grouped by SeriesInstanceUID, sorted by position by GDCM, multi-frame files
  too), NIfTI, NRRD, MHA/MHD files; with ``decode=True`` the ``.mlc`` files.
* :func:`convert_one` (runs on a worker) reads one item, encodes it to a private temporary
  file in DST, verifies it by decoding (shape, pixel type, geometry, PSNR / max error against
  the original and the quality target), and only then links it to its final name. It never
  raises: it returns the manifest record, ``status`` "ok" or "failed" with the error.
* :func:`run` skips items whose verified output is recorded in the manifest, submits the rest
  to a ``dask.distributed`` client (a ``LocalCluster`` of single-threaded worker processes by
  default, or an existing scheduler), and appends each record to the manifest (JSON lines,
  flushed and fsynced) as it arrives, so a killed run resumes where it stopped.

SRC is only ever read. Outputs are never replaced unless ``overwrite``; an output that exists
without a manifest record (a run killed between the rename and the manifest line) is verified
against its input and adopted, or reported.

Workers import JAX lazily (at their first item) with ``XLA_PYTHON_CLIENT_PREALLOCATE=false``.
With a remote scheduler, SRC and DST must be visible to the workers under the same paths.
"""


from .batch import Summary, default_workers, run
from .discover import discover
from .item import convert_one
from .manifest import Manifest, is_done
from .options import (DECODE_FORMATS, DICOM_KEEP, MANIFEST_NAME, PARTIAL_DIR, ConvertOptions, Item,
                      VerificationError, short_hash)
from .report import write_plot

__all__ = ["run", "discover", "convert_one", "write_plot", "ConvertOptions", "Item", "Summary",
           "Manifest", "is_done", "default_workers", "short_hash", "VerificationError",
           "MANIFEST_NAME", "PARTIAL_DIR", "DICOM_KEEP", "DECODE_FORMATS"]
