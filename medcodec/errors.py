"""Exception hierarchy of medcodec.

Every error a user can cause (bad input, a damaged file, a missing model) is a
:class:`MedcodecError`; the CLI prints its message on one line and exits with code 2.
Messages say what went wrong and what to do next.
"""

from __future__ import annotations


class MedcodecError(Exception):
    """Base class of all errors medcodec raises on purpose."""


class InputError(MedcodecError, ValueError):
    """The image or volume given to the encoder cannot be coded (NaN, empty, wrong shape)."""


class UnsupportedPixelTypeError(InputError):
    """The pixel type (vector, complex, 64-bit integer, ...) is not supported by the codec."""


class ReadError(MedcodecError, OSError):
    """An input file could not be read (missing, unreadable, not an image)."""


class WriteError(MedcodecError, OSError):
    """An output file could not be written; no partial file is left behind."""


class ContainerError(MedcodecError):
    """A ``.mlc`` file is malformed: bad magic, bad checksum, inconsistent index."""


class TruncatedFileError(ContainerError):
    """A ``.mlc`` file ends before the data its header announces."""


class UnsupportedVersionError(ContainerError):
    """A ``.mlc`` file needs a newer medcodec (unknown format version or required chunk)."""


class ModelMismatchError(MedcodecError):
    """A ``.mlc`` file was written with a model this installation does not have."""


class CheckpointError(MedcodecError):
    """A checkpoint folder is missing, incomplete or does not match its recorded hash."""


class ReconstructionMismatchError(MedcodecError):
    """This machine's network reconstructs a slice differently from the encoder's (float
    drift between CPU/GPU/libraries): a bounded-error file would not be exact, so it is refused."""
