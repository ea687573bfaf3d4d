"""Property tests: whatever bytes a reader is given, it returns valid codes or raises
MedcodecError; never another exception, never a hang."""

import os
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st


import medcodec.format as mlc
from medcodec.format import spec as mlc_spec
from medcodec.coding import codes as code_model
from medcodec.coding import wavelet_layer as tr
from medcodec.errors import MedcodecError

from ..format.test_container import _chunks

DATA = Path(__file__).parent.parent / "data"
GOLDEN = (DATA / "golden_v1.mlc").read_bytes()  # format 1.0: packed / deflated codes
GOLDEN_1_1 = (DATA / "golden_v1_1.mlc").read_bytes()  # format 1.1: context-coded codes
GOLDEN_1_2 = (DATA / "golden_v1_2.mlc").read_bytes()  # format 1.2: adaptive tiles
GOLDEN_1_3 = (DATA / "golden_v1_3.mlc").read_bytes()  # format 1.3: wavelet residual layer
GRIDS = {(1, 0): (2, 3), (1, 1): (6, 5), (1, 2): (7, 6), (1, 3): (2, 3)}  # the golden files' code grids
# 4 tests x 1500 inputs in CI; a long run: MEDCODEC_FUZZ_EXAMPLES=25000 python -m pytest tests/fuzz
EXAMPLES = int(os.environ.get("MEDCODEC_FUZZ_EXAMPLES", "1500"))
SETTINGS = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))


def read_everything(path: Path) -> None:
    with mlc.Reader(path) as r:
        h = r.header
        gh, gw = GRIDS.get(r.version, (6, 5))
        counts = None if r.tiles is None else r.tiles.cell_counts(gh, gw)
        for s in range(h.slices):
            codes = code_model.decode_slices([[r.read_codes(s, t) for t in range(h.iterations)]], (gh, gw, h.bits),
                                          None if counts is None else counts[s:s + 1])
            assert set(np.unique(codes)) <= ({-1, 1} if counts is None else {-1, 0, 1})
            if r.wavelet is not None and h.height * h.width <= 4096:
                levels, data = r.read_wavelet(s)
                tr.decode_bands(data, (h.height, h.width))
        r.verify_end()


def check(tmp_path: Path, data: bytes) -> None:
    p = tmp_path / "f.mlc"
    p.write_bytes(data)
    try:
        read_everything(p)
    except MedcodecError:
        pass


@SETTINGS
@given(st.binary(max_size=2048))
def test_random_bytes(tmp_path_factory, data):
    check(tmp_path_factory.mktemp("r"), data)


@SETTINGS
@given(st.sampled_from([GOLDEN, GOLDEN_1_1, GOLDEN_1_2, GOLDEN_1_3]),
       st.lists(st.tuples(st.integers(0, 1 << 16), st.integers(1, 255)), min_size=1, max_size=8))
def test_mutated_golden_file(tmp_path_factory, golden, edits):
    data = bytearray(golden)
    for pos, xor in edits:
        data[pos % len(data)] ^= xor
    check(tmp_path_factory.mktemp("m"), bytes(data))


@SETTINGS
@given(st.integers(0, len(GOLDEN)), st.binary(max_size=64))
def test_truncated_or_extended(tmp_path_factory, cut, tail):
    check(tmp_path_factory.mktemp("t"), GOLDEN[:cut] + tail)


@SETTINGS
@given(st.sampled_from([GOLDEN, GOLDEN_1_1, GOLDEN_1_2, GOLDEN_1_3]), st.integers(0, 7), st.binary(min_size=1, max_size=600))
# found by the 100,000-input run: constriction raised AssertionError on garbage words
@example(GOLDEN_1_1, 5, b"q\x1b\x001\xc7\xd4\x00\x14\xa1n\xd1\x01")
def test_mutations_with_fixed_checksums(tmp_path_factory, golden, which, payload):
    """Forgeries whose CRCs are right: a CODE (or, in 1.3, XRES) chunk replaced by arbitrary
    bytes (often a valid prefix and garbage range-coder words)."""
    chunks = _chunks(golden)
    code_at = [i for i, (c, _) in enumerate(chunks) if c in (b"CODE", b"XRES")]
    i = code_at[which % len(code_at)]
    kind = chunks[i][0]
    if golden is not GOLDEN and payload[0] % 2:  # keep the chunk's prefix, garble the words
        payload = chunks[i][1][:7 if kind == b"CODE" else 5] + payload
    chunks[i] = (kind, payload)
    check(tmp_path_factory.mktemp("f"), golden[:16] + b"".join(mlc_spec.frame_chunk(c, p) for c, p in chunks))
