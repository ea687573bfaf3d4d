"""Decoding through the library with a real (tiny) model: forged files whose checksums are
right - HEAD, GRID, TILE, index, CODE or residual chunks replaced - decode to an image of
the header's size or raise MedcodecError; never another exception (e.g. a shape error from
deep inside JAX), never a hang."""

import os

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import medcodec.format as mlc
from medcodec.format import spec as mlc_spec
from medcodec import api
from medcodec.errors import MedcodecError

from ..format.test_container import _chunks

# 2 tests x 2 files x 75 inputs in CI (each decode runs the network); longer: MEDCODEC_FUZZ_EXAMPLES
EXAMPLES = max(1, int(os.environ.get("MEDCODEC_FUZZ_EXAMPLES", "1500")) // 20)
SETTINGS = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))


@pytest.fixture(scope="module", params=["bounded", "wavelet"])
def valid_file(request, tmp_path_factory, tiny_checkpoints):
    """A small file with every optional structure: pieces, adaptive tiles, a residual layer
    (bounded-error or wavelet) (the tiny model stays installed for this module's tests)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MEDCODEC_CHECKPOINTS", str(tiny_checkpoints))
        with pytest.MonkeyPatch.context() as pieces:
            pieces.setenv("MEDCODEC_MAX_PIECE_SIDE", "32")
            rng = np.random.default_rng(0)
            vol = rng.integers(0, 3000, (2, 40, 33)).astype(np.uint16)
            counts = rng.integers(0, 3, (2 * 4, 1, 1)).astype(np.uint8)
            path = tmp_path_factory.mktemp("api") / "v.mlc"
            layer = {"max_error": 3} if request.param == "bounded" else {"transform_step": 40.0}
            api.compress(vol, path, iterations=2, tiles=mlc.TileMap(2, counts), **layer)
            assert mlc.read_header(path).grid == (2, 2)
        yield path.read_bytes()


def decode(tmp_path, data: bytes) -> bool:
    """True if the file decoded (to the header's shape and type), False if refused."""
    p = tmp_path / "f.mlc"
    p.write_bytes(data)
    try:
        out, h = api.decompress(p)
    except MedcodecError:
        return False
    assert out.shape == tuple(reversed(h.size)) and out.dtype == np.dtype(h.pixel_type)
    return True


def test_the_valid_file_decodes(tmp_path, valid_file):
    assert decode(tmp_path, valid_file)


@SETTINGS
@given(which=st.integers(0, 50), payload=st.binary(max_size=300), keep=st.integers(0, 40))
def test_forged_chunks_with_valid_checksums(tmp_path_factory, valid_file, which, payload, keep):
    chunks = _chunks(valid_file)
    i = which % len(chunks)
    ctype, old = chunks[i]
    chunks[i] = (ctype, old[: keep % (len(old) + 1)] + payload)  # keep a valid prefix, then anything
    decode(tmp_path_factory.mktemp("f"), valid_file[:16] + b"".join(mlc_spec.frame_chunk(c, p) for c, p in chunks))


@SETTINGS
@given(edits=st.lists(st.tuples(st.integers(0, 1 << 16), st.integers(1, 255)), min_size=1, max_size=4),
       fix=st.booleans())
def test_bit_flips_with_recomputed_checksums(tmp_path_factory, valid_file, edits, fix):
    """Flip bytes inside chunk payloads (numbers in HEAD, GRID, TILE, indexes), CRCs fixed."""
    chunks = _chunks(valid_file)
    flat = bytearray(b"".join(p for _, p in chunks))
    for pos, xor in edits:
        flat[pos % len(flat)] ^= xor
    out, at = [], 0
    for ctype, p in chunks:
        out.append((ctype, bytes(flat[at: at + len(p)])))
        at += len(p)
    data = valid_file[:16] + b"".join(mlc_spec.frame_chunk(c, p) for c, p in out)
    decode(tmp_path_factory.mktemp("b"), data if fix else bytes(flat))
