"""The .mlc v1 container: round trip, golden bytes, truncation, corruption, versions."""

import struct
import zlib
from pathlib import Path

import numpy as np
import pytest


import medcodec.format as mlc
from medcodec.format import spec as mlc_spec
from medcodec.format import header as mlc_header
from medcodec.coding import codes as code_model
from medcodec.io import atomic
from medcodec.errors import (ContainerError, MedcodecError, UnsupportedVersionError, WriteError)

GOLDEN = Path(__file__).parent.parent / "data" / "golden_v1.mlc"  # written by format 1.0
GOLDEN_1_1 = Path(__file__).parent.parent / "data" / "golden_v1_1.mlc"  # 1.1: context-coded codes


def make_header(slices=2, iterations=3, bits=4, gh=2, gw=3) -> mlc.Header:
    return mlc.Header(
        ndim=3, pixel_type="int16", size=(40, 30, slices), spacing=(0.5, 0.75, 2.5),
        origin=(-10.0, 20.0, 5.5), direction=(1.0, 0, 0, 0, 0, -1.0, 0, 1.0, 0),
        window=(-1024.0, 3071.0), slices=slices, height=30, width=40, coded_height=32,
        coded_width=64, iterations=iterations, bits=bits, model_id="test-00000000",
        metadata={"0008|0060": "CT", "note": "µ-ünïcode"})


def make_codes(h: mlc.Header, gh=2, gw=3, seed=0):
    rng = np.random.default_rng(seed)
    arrays = rng.choice(np.array([-1, 1], np.int8), size=(h.slices, h.iterations, gh, gw, h.bits))
    arrays[0, 0] = 1  # a constant chunk, which deflates
    packed = [[code_model.pack_codes(arrays[s, t]) for t in range(h.iterations)] for s in range(h.slices)]
    return arrays, packed


def write_sample(path: Path) -> np.ndarray:
    h = make_header()
    arrays, packed = make_codes(h)
    mlc.write(path, h, packed)
    return arrays


def test_round_trip(tmp_path):
    p = tmp_path / "a.mlc"
    arrays = write_sample(p)
    with mlc.Reader(p) as r:
        h = r.header
        assert (h.size, h.spacing, h.origin) == ((40, 30, 2), (0.5, 0.75, 2.5), (-10.0, 20.0, 5.5))
        assert h.direction == (1.0, 0, 0, 0, 0, -1.0, 0, 1.0, 0)
        assert h.metadata == {"0008|0060": "CT", "note": "µ-ünïcode"}
        assert h.window == (-1024.0, 3071.0) and h.model_id == "test-00000000"
        for s in range(2):
            for t in range(3):
                coding, data = r.read_codes(s, t)
                np.testing.assert_array_equal(code_model.unpack_codes(coding, data, (2, 3, 4)), arrays[s, t])
        r.verify_end()
    assert mlc.read_header(p).slices == 2


def test_constant_chunk_is_deflated():
    coding, data = code_model.pack_codes(np.ones((16, 16, 32), np.int8))
    assert coding == code_model.CODING_ZLIB and len(data) < 16 * 16 * 32 // 8


def test_golden_v1_0_file_still_reads():
    """Files written by format 1.0 stay readable: header and every code chunk."""
    arrays, _ = make_codes(make_header())
    with mlc.Reader(GOLDEN) as r:
        assert r.version == (1, 0) and r.header.size == (40, 30, 2)
        for s in range(2):
            chunks = [r.read_codes(s, t) for t in range(3)]
            np.testing.assert_array_equal(code_model.decode_slice(chunks, (2, 3, 4)), arrays[s])
        r.verify_end()


def test_golden_v1_1_bytes_and_contents(tmp_path):
    """The 1.1 byte layout (incl. the context coder's bitstream) is frozen: this version
    writes exactly the committed golden file, which decodes back to the known codes."""
    h = make_header(iterations=4, gh=6, gw=5)
    rng = np.random.default_rng(7)
    arrays = np.where(rng.random((2, 4, 6, 5, 4)) < 0.2, 1, -1).astype(np.int8)
    arrays[1, :, :3] = 1  # a flat area, as in air
    packed = [code_model.encode_slice(arrays[s]) for s in range(2)]
    assert any(coding == code_model.CODING_CONTEXT for chunks in packed for coding, _ in chunks)
    p = tmp_path / "g.mlc"
    mlc.write(p, h, packed)
    assert p.read_bytes() == GOLDEN_1_1.read_bytes(), "1.1 layout changed: files would not stay compatible"
    with mlc.Reader(GOLDEN_1_1) as r:
        assert r.version == (1, 1)
        for s in range(2):
            chunks = [r.read_codes(s, t) for t in range(4)]
            np.testing.assert_array_equal(code_model.decode_slice(chunks, (6, 5, 4)), arrays[s])
            # progressive: the first 2 iterations decode alone
            np.testing.assert_array_equal(code_model.decode_slice(chunks[:2], (6, 5, 4)), arrays[s, :2])


def test_golden_file_starts_with_documented_layout():
    b = GOLDEN.read_bytes()
    assert b[:8] == b"\x89MLC\r\n\x1a\n"
    assert struct.unpack("<HH", b[8:12]) == (1, 0)
    assert struct.unpack("<I", b[12:16])[0] == zlib.crc32(b[:12])
    assert b[16:20] == b"HEAD"
    assert b[-16:-12] == b"END " and b[-12:-4] == bytes(8)


def read_all(path: Path) -> None:
    with mlc.Reader(path) as r:
        for s in range(r.header.slices):
            for t in range(r.header.iterations):
                code_model.unpack_codes(*r.read_codes(s, t), (2, 3, 4))
        r.verify_end()


def test_every_truncation_is_detected(tmp_path):
    good = tmp_path / "good.mlc"
    write_sample(good)
    data = good.read_bytes()
    bad = tmp_path / "bad.mlc"
    for n in range(len(data)):
        bad.write_bytes(data[:n])
        with pytest.raises(ContainerError):
            read_all(bad)


def test_every_byte_flip_is_detected(tmp_path):
    good = tmp_path / "good.mlc"
    write_sample(good)
    data = bytearray(good.read_bytes())
    bad = tmp_path / "bad.mlc"
    for i in range(len(data)):
        flipped = bytearray(data)
        flipped[i] ^= 0x5A
        bad.write_bytes(bytes(flipped))
        with pytest.raises(MedcodecError):
            read_all(bad)


def test_trailing_garbage_is_detected(tmp_path):
    p = tmp_path / "a.mlc"
    write_sample(p)
    p.write_bytes(p.read_bytes() + b"x")
    with pytest.raises(ContainerError, match="END chunk"):
        read_all(p)


def test_not_an_mlc_file(tmp_path):
    p = tmp_path / "x.mlc"
    p.write_bytes(b"P5\n" + bytes(100))
    with pytest.raises(ContainerError, match="not a .mlc file"):
        mlc.read_header(p)


def _chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    """Split a file after its 16-byte preamble into (type, payload) pairs."""
    pos, out = 16, []
    while pos < len(data):
        ctype, n = struct.unpack_from("<4sQ", data, pos)
        out.append((ctype, data[pos + 12 : pos + 12 + n]))
        pos += 12 + n + 4
    return out


def _rebuild(chunks, version=(1, 0)) -> bytes:
    """Assemble a file from (type, payload) pairs, fixing INDX offsets to where CODE lands."""
    pre = mlc_spec.preamble(*version)
    sizes = [12 + len(p) + 4 for _, p in chunks]
    offsets = [len(pre) + sum(sizes[:i]) for i in range(len(chunks))]
    code_offsets = [o for (t, _), o in zip(chunks, offsets) if t == b"CODE"]
    out = []
    for ctype, payload in chunks:
        if ctype == b"INDX":
            n = struct.unpack_from("<I", payload)[0]
            entries = [struct.unpack_from("<QI", payload, 4 + 12 * i) for i in range(n)]
            payload = struct.pack("<I", n) + b"".join(
                struct.pack("<QI", off, ln) for off, (_, ln) in zip(code_offsets, entries))
        out.append(mlc_spec.frame_chunk(ctype, payload))
    return pre + b"".join(out)


def test_rebuild_helper_is_faithful():
    assert _rebuild(_chunks(GOLDEN.read_bytes())) == GOLDEN.read_bytes()


def test_newer_major_version_is_refused(tmp_path):
    p = tmp_path / "a.mlc"
    p.write_bytes(_rebuild(_chunks(GOLDEN.read_bytes()), version=(2, 0)))
    with pytest.raises(UnsupportedVersionError, match="version 2.0"):
        mlc.read_header(p)


def test_newer_minor_version_with_unknown_optional_chunks_is_read(tmp_path):
    chunks = _chunks(GOLDEN.read_bytes())
    # a later 1.x writer may add optional chunks anywhere, also between CODE chunks
    extended = chunks[:2] + [(b"xtra", b"future header data")] + chunks[2:5] + [(b"xidx", b"..")] + chunks[5:]
    p = tmp_path / "a.mlc"
    p.write_bytes(_rebuild(extended, version=(1, 7)))
    read_all(p)
    with mlc.Reader(p) as r:
        assert r.header.version == (1, 7)
        assert r.header.metadata["0008|0060"] == "CT"


def test_unknown_required_chunk_is_refused(tmp_path):
    chunks = _chunks(GOLDEN.read_bytes())
    p = tmp_path / "a.mlc"
    p.write_bytes(_rebuild(chunks[:1] + [(b"ZSTD", b"")] + chunks[1:], version=(1, 3)))
    with pytest.raises(UnsupportedVersionError, match="upgrade medcodec"):
        mlc.read_header(p)


def test_unknown_coding_is_refused():
    with pytest.raises(UnsupportedVersionError):
        code_model.unpack_codes(7, b"", (1, 1, 8))


def test_write_refuses_to_overwrite(tmp_path):
    p = tmp_path / "a.mlc"
    p.write_bytes(b"precious")
    h = make_header()
    _, packed = make_codes(h)
    with pytest.raises(WriteError, match="exists"):
        mlc.write(p, h, packed)
    assert p.read_bytes() == b"precious"
    mlc.write(p, h, packed, overwrite=True)
    assert mlc.read_header(p).slices == 2


def test_failed_write_leaves_nothing(tmp_path):
    p = tmp_path / "a.mlc"

    def parts():
        yield b"partial data"
        raise RuntimeError("disk fell off")

    with pytest.raises(RuntimeError):
        atomic.atomic_write(p, parts())
    assert list(tmp_path.iterdir()) == []


def test_write_into_missing_folder(tmp_path):
    h = make_header()
    _, packed = make_codes(h)
    with pytest.raises(WriteError, match="does not exist"):
        mlc.write(tmp_path / "nope" / "a.mlc", h, packed)


def _forge_head(**changes) -> bytes:
    """The golden file with HEAD fields replaced and every checksum recomputed (a forgery
    that CRCs cannot catch)."""
    import dataclasses

    chunks = _chunks(GOLDEN.read_bytes())
    header = mlc_header.decode_header(chunks[0][1])
    forged = dataclasses.replace(header, **changes)
    return _rebuild([(b"HEAD", mlc_header.encode_header(forged))] + chunks[1:])


@pytest.mark.parametrize("changes,match", [
    (dict(size=(100_000, 100_000, 100_000), width=100_000, height=100_000, slices=100_000,
          coded_width=100_032, coded_height=100_032), "exceeds the limit"),
    # few voxels in all, but one slice the network would need ~100 GB of activations for
    (dict(size=(100_000, 100_000, 1), width=100_000, height=100_000, slices=1,
          coded_width=100_032, coded_height=100_032), "per slice"),
    (dict(size=(40, 30, 3)), "slices"),
    (dict(size=(41, 30, 2)), "slice"),
    (dict(coded_height=16), "coded size"),
    (dict(window=(5.0, float("nan"))), "window"),
    (dict(spacing=(0.5, 0.0, 2.5)), "geometry"),
])
def test_forged_header_is_refused_before_allocation(tmp_path, changes, match):
    p = tmp_path / "forged.mlc"
    p.write_bytes(_forge_head(**changes))
    with pytest.raises(ContainerError, match=match):
        mlc.read_header(p)


def test_batched_entropy_coding_matches_slice_by_slice():
    """Coding a batch of slices in lockstep shares numpy work only: every stream is the one
    the slice alone gives, and the batch decodes back exactly (also with mixed codings)."""
    rng = np.random.default_rng(3)
    codes = np.where(rng.random((5, 3, 7, 6, 8)) < 0.3, 1, -1).astype(np.int8)
    codes[2] = 1  # deflates better: packed chunks between context-coded ones
    batch = code_model.encode_slices(codes)
    assert batch == [code_model.encode_slice(c) for c in codes]
    assert {code_model.CODING_ZLIB, code_model.CODING_CONTEXT} <= {coding for chunks in batch for coding, _ in chunks}
    np.testing.assert_array_equal(code_model.decode_slices(batch, (7, 6, 8)), codes)
    np.testing.assert_array_equal(code_model.decode_slices([c[:2] for c in batch], (7, 6, 8)), codes[:, :2])


def test_prefix_sizes_match_real_truncations(tmp_path):
    """Rate control reads prefix sizes from the index; they equal the truncated files."""
    p = tmp_path / "a.mlc"
    h = make_header(iterations=4, gh=6, gw=5)
    arrays = np.where(np.random.default_rng(1).random((2, 4, 6, 5, 4)) < 0.3, 1, -1).astype(np.int8)
    mlc.write(p, h, [code_model.encode_slice(arrays[s]) for s in range(2)],
                    bounded_error=mlc.BoundedErrorLayer(3, [(1, 2, b"abcd"), (3, 4, b"efghijkl")]))
    sizes = mlc.prefix_sizes(p)
    assert sizes[-1] == p.stat().st_size  # all iterations: the residual layer stays
    assert sizes == [mlc.truncate(p, tmp_path / f"t{k}.mlc", k) for k in range(1, 5)]
