"""Rate control: encode to a bit rate, a compression ratio or a PSNR target.

:func:`encode_to_target` (with an :class:`medcodec.options.EncodeOptions`) and its keyword
form :func:`compress_to` encode the candidates (:mod:`.control`): learned iterations
uniform or with adaptive tiles (:mod:`.adaptive`, planned by :mod:`.tiles`), the wavelet
layer over a few learned iterations (:mod:`.wavelet`) and, for a PSNR target on an
integer image, the bounded-error layer (:mod:`.bounded`), and keep the best real file. A
region of interest (:mod:`.regions`) weighs errors outside it less. Rates are counted
from the bytes on disk; PSNR uses the image's own range (max - min) as peak. Everything
here calls :mod:`medcodec.pipeline`, never the facade.
"""

from .adaptive import BPP_TOLERANCE, MAX_PASSES
from .control import compress_to, encode_to_target

__all__ = ["BPP_TOLERANCE", "MAX_PASSES", "compress_to", "encode_to_target"]
