"""medcodec: a learned, variable-rate lossy codec for medical images and volumes.

Importing this package is cheap: JAX is imported only when pixels are encoded or decoded.
"""

from .api import EncodeStats, compress, decompress, info, read, write
from .options import EncodeOptions
from .errors import (CheckpointError, ContainerError, InputError, MedcodecError, ModelMismatchError,
                     ReadError, TruncatedFileError, UnsupportedPixelTypeError, UnsupportedVersionError,
                     WriteError)

__version__ = "0.1.0"

__all__ = [
    "compress", "decompress", "read", "write", "info", "EncodeOptions", "EncodeStats", "MedcodecError",
    "ContainerError", "TruncatedFileError", "UnsupportedVersionError", "ModelMismatchError",
    "CheckpointError", "InputError", "UnsupportedPixelTypeError", "ReadError", "WriteError",
]
