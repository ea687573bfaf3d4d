"""The `.mlc` container alone (numpy only): chunk framing and limits (:mod:`.spec`), the
header and its checks (:mod:`.header`), layer chunks (:mod:`.layers`), :mod:`.reader` and
:mod:`.writer`. The byte layout is documented in :mod:`.spec` and ``docs/format.md``."""

from .header import Header, validate_header
from .layers import BoundedErrorLayer, SlicePrediction, TileMap, WaveletLayer, valid_wavelet_step
from .reader import Reader, payload_sizes, prefix_sizes, read_header, read_image_metadata
from .spec import MAGIC, VERSION
from .writer import truncate, write

__all__ = ["BoundedErrorLayer", "Header", "MAGIC", "Reader", "SlicePrediction", "TileMap", "VERSION", "WaveletLayer",
           "payload_sizes", "prefix_sizes", "read_header", "read_image_metadata", "truncate", "valid_wavelet_step",
           "validate_header", "write"]
