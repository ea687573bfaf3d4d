"""The bounded-error residual layer: |decoded - original| <= E on every voxel, lossless at
E = 0, stream round trips, and a base that differs from the encoder's is refused."""

import struct

import numpy as np
import pytest

import medcodec.format as mlc
from medcodec.coding import bounded_error
from medcodec import api
from medcodec.errors import InputError, ReconstructionMismatchError

from ..format.test_container import _chunks, _rebuild


@pytest.mark.parametrize("max_error", [0, 1, 7])
@pytest.mark.parametrize("shape", [(37, 29), (1, 1), (1, 40), (17, 1)])
def test_stream_round_trip_within_bound(max_error, shape):
    rng = np.random.default_rng(max_error)
    x = (rng.normal(0, 300, shape) + 1000).astype(np.int16)
    base = (x + rng.normal(0, 20, shape)).round().astype(np.int16)
    data, final = bounded_error.encode_slice(x, base, max_error)
    assert np.abs(final.astype(int) - x).max() <= max_error
    np.testing.assert_array_equal(bounded_error.decode_slice(base, data, max_error), final)


def test_extreme_values_round_trip():
    x = np.array([[0, 65535, 7], [65535, 0, 1]], np.uint16)
    base = 65535 - x
    data, final = bounded_error.encode_slice(x, base, 0)
    np.testing.assert_array_equal(final, x)
    np.testing.assert_array_equal(bounded_error.decode_slice(base, data, 0), x)
    data, final = bounded_error.encode_slice(x, base, 3)  # clipping at the type's ends keeps the bound
    assert np.abs(bounded_error.decode_slice(base, data, 3).astype(int) - x).max() <= 3


def test_smooth_residual_costs_few_bits():
    """Hierarchical prediction: a smooth residual field costs far less than its range."""
    yy, xx = np.mgrid[:128, :128]
    x = (1000 + 300 * np.sin(xx / 9.0) * np.cos(yy / 13.0)).astype(np.int16)
    base = np.full_like(x, 1000)
    smooth, _ = bounded_error.encode_slice(x, base, 0)
    noise = np.random.default_rng(0).integers(700, 1300, x.shape).astype(np.int16)
    rough, _ = bounded_error.encode_slice(noise, base, 0)
    # measured: 3.9 bpp smooth, 9.9 bpp for uniform noise of the same range (entropy 9.2)
    assert len(smooth) < 0.5 * len(rough)


@pytest.mark.parametrize("max_error", [0, 3])
def test_compress_with_bound(tmp_path, tiny_model_id, ct_small_path, max_error):
    import pydicom

    ct = pydicom.dcmread(str(ct_small_path)).pixel_array.astype(np.int16)[None].repeat(2, axis=0)
    ct[1] = ct[1][::-1]
    p = tmp_path / "b.mlc"
    stats = api.compress(ct, p, iterations=2, max_error=max_error)
    assert stats.error_bound == max_error and stats.max_error <= max_error
    out, h = api.decompress(p)
    assert np.abs(out.astype(int) - ct).max() <= max_error
    if max_error == 0:
        np.testing.assert_array_equal(out, ct)
    with mlc.Reader(p) as r:
        assert r.max_error == max_error
    # a preview with fewer iterations ignores the residual layer
    preview, _ = api.decompress(p, iterations=1)
    assert np.abs(preview.astype(int) - ct).max() > max_error
    # truncation keeps the layer only with all iterations
    mlc.truncate(p, tmp_path / "t.mlc", 1)
    assert mlc.Reader(tmp_path / "t.mlc").max_error is None


def test_bound_refused_for_float_images(tmp_path, tiny_model_id):
    with pytest.raises(InputError, match="integer"):
        api.compress(np.zeros((32, 32), np.float32), tmp_path / "f.mlc", max_error=0)
    with pytest.raises(InputError, match="max_error"):
        api.compress(np.zeros((32, 32), np.int16), tmp_path / "f.mlc", max_error=-1)
    assert not (tmp_path / "f.mlc").exists()


def test_different_base_is_refused_not_returned(tmp_path, tiny_model_id):
    """A decoder whose network output differs from the encoder's (CPU vs GPU drift) must
    refuse a bounded-error file: simulated by a RESD chunk whose base checksum differs."""
    img = (np.arange(40 * 36).reshape(40, 36) % 97).astype(np.uint16)
    p = tmp_path / "l.mlc"
    api.compress(img, p, iterations=1, max_error=0)
    chunks = _chunks(p.read_bytes())
    i = [c for c, _ in chunks].index(b"RESD")
    s, coding, crc_base, crc_final = struct.unpack_from("<IBII", chunks[i][1])
    chunks[i] = (b"RESD", struct.pack("<IBII", s, coding, crc_base ^ 1, crc_final) + chunks[i][1][13:])
    p.write_bytes(_rebuild(chunks, version=struct.unpack_from("<HH", p.read_bytes(), 8)))  # as written
    with pytest.raises(ReconstructionMismatchError, match="differently"):
        api.decompress(p)


def test_slices_coded_in_lockstep_give_each_slice_its_own_stream():
    """encode_slices / decode_slices code several slices at once, yet each stream is byte
    for byte the slice's own (one exact copy of its base, one noisy, one dense)."""
    rng = np.random.default_rng(5)
    bases = rng.integers(1000, 3000, (3, 70, 90)).astype(np.uint16)
    originals = bases.copy()
    originals[1] = np.clip(bases[1] + rng.laplace(0, 20, (70, 90)), 0, 4095).astype(np.uint16)
    originals[2] = rng.integers(0, 4096, (70, 90)).astype(np.uint16)
    for e in (0, 2):
        alone = [bounded_error.encode_slice(o, b, e) for o, b in zip(originals, bases)]
        together = bounded_error.encode_slices(originals, bases, e)
        assert [d for d, _ in together] == [d for d, _ in alone]
        decoded = bounded_error.decode_slices(bases, [d for d, _ in alone], e)
        for i in range(3):
            np.testing.assert_array_equal(decoded[i], alone[i][1])
            assert np.abs(decoded[i].astype(int) - originals[i]).max() <= e


def _sample_slices():
    """Three neighbouring slices of the bundled real MR head (the independent oracle is the
    image itself: a lossless stream must give it back)."""
    from medcodec.data.fetch import load_volume
    from medcodec.samples import sample_path

    vol = load_volume(sample_path())
    return np.ascontiguousarray(vol[vol.shape[0] // 2:vol.shape[0] // 2 + 3, :96, :96]).astype(np.uint16)  # integer-valued


@pytest.mark.parametrize("coding", bounded_error.CODINGS)
@pytest.mark.parametrize("max_error", [0, 2])
def test_both_codings_round_trip_a_real_slice_within_bound(coding, max_error):
    x = _sample_slices()[0]
    base = np.full_like(x, int(x.mean()))
    data, final = bounded_error.encode_slice(x, base, max_error, coding)
    assert np.abs(final.astype(np.int64) - x).max() <= max_error
    np.testing.assert_array_equal(bounded_error.decode_slice(base, data, max_error, coding), final)


def test_coding_1_is_smaller_on_real_slices_and_carried_models_help():
    """Adaptive bits below the leading one (coding 1) cost less than p = 1/2 on a real
    slice; starting the next slice from the models the first ended with costs less again,
    and decoding needs exactly those models."""
    s = _sample_slices()
    base = np.full_like(s[0], int(s.mean()))
    old = len(bounded_error.encode_slice(s[1], base, 0, coding=0)[0])
    new = len(bounded_error.encode_slice(s[1], base, 0, coding=1)[0])
    assert new < old
    _, _, models = bounded_error.code_slice(s[0], base, 0, 1)
    carried, final, _ = bounded_error.code_slice(s[1], base, 0, 1, models)
    assert len(carried) < new
    np.testing.assert_array_equal(bounded_error.decode_one(base, carried, 0, 1, models)[0], s[1])
    np.testing.assert_array_equal(final, s[1])
