"""Coverage-guided fuzzing of the .mlc reader with atheris (libFuzzer), outside the test suite.

    pip install atheris
    python tests/fuzz/atheris_target.py -runs=200000 -max_len=4096 [corpus_dir]

Starts from the two golden files. Half of the inputs get their checksums recomputed first
(the preamble's and every chunk's whose length fits), so mutations reach the payload parsers
instead of stopping at a CRC mismatch. Every input is parsed and its codes and residual
layer decoded (the full reader path, without a model). Invariant: only MedcodecError may
escape; any other exception is a crash that libFuzzer reports with the input causing it.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import atheris

with atheris.instrument_imports():
    import numpy as np

    import medcodec.format as mlc
    from medcodec.coding import bounded_error
    from medcodec.coding import codes as code_model
    from medcodec.errors import MedcodecError

DATA = Path(__file__).resolve().parent.parent / "data"
_TMP = Path(tempfile.mkdtemp(prefix="mlc-fuzz-")) / "f.mlc"


def read_everything(path: Path) -> None:
    with mlc.Reader(path) as r:
        h = r.header
        grid = (-(-h.height // 16), -(-h.width // 16), h.bits)
        for s in range(h.slices):
            code_model.decode_slice([r.read_codes(s, t) for t in range(h.iterations)], grid)
            if r.max_error is not None:
                _, _, data = r.read_bounded_error(s)
                bounded_error.decode_slice(np.zeros((h.height, h.width), np.int16), data, r.max_error)
        r.verify_end()


def with_valid_crcs(data: bytes) -> bytes:
    """The input with the preamble CRC and each well-framed chunk's CRC recomputed."""
    import struct
    import zlib

    out = bytearray(data)
    if len(out) >= 16:
        out[12:16] = struct.pack("<I", zlib.crc32(bytes(out[:12])))
    pos = 16
    while pos + 12 <= len(out):
        (n,) = struct.unpack_from("<Q", out, pos + 4)
        end = pos + 12 + n
        if end + 4 > len(out):
            break
        out[end : end + 4] = struct.pack("<I", zlib.crc32(bytes(out[pos:end])))
        pos = end + 4
    return bytes(out)


def test_one_input(data: bytes) -> None:
    if data[:1] and data[0] & 1:
        data = with_valid_crcs(data)
    _TMP.write_bytes(data)
    try:
        read_everything(_TMP)
    except MedcodecError:
        pass


def main() -> None:
    corpus = [a for a in sys.argv[1:] if not a.startswith("-")]
    if not corpus:  # seed a corpus folder with the golden files
        seed = Path(tempfile.mkdtemp(prefix="mlc-corpus-"))
        for g in ("golden_v1.mlc", "golden_v1_1.mlc"):
            (seed / g).write_bytes((DATA / g).read_bytes())
        sys.argv.append(str(seed))
    os.environ.setdefault("MEDCODEC_MAX_VOXELS", str(1 << 24))  # keep forged sizes small
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
