"""The wavelet residual layer: exact stream round trip, rate/quality trade-off, robustness,
and the frozen .mlc 1.3 layout (XIDX/XRES chunks)."""

from pathlib import Path

import numpy as np
import pytest

import medcodec.format as mlc
from medcodec import prep
from medcodec.coding import wavelet_layer as tr
from medcodec.coding import wavelet
from medcodec.errors import ContainerError, UnsupportedVersionError

from ..format.test_container import make_codes, make_header

GOLDEN_1_3 = Path(__file__).parent.parent / "data" / "golden_v1_3.mlc"  # 1.3: wavelet residual layer


@pytest.fixture
def ct(ct_small_path):
    import pydicom

    return pydicom.dcmread(str(ct_small_path)).pixel_array.astype(np.int16)


def _window(a):
    return float(a.min()), float(a.max())


@pytest.mark.parametrize("delta", [2.0, 20.0, 200.0])
def test_decoder_reconstructs_exactly_what_the_encoder_measured(ct, delta):
    base = np.full_like(ct, int(ct.mean()))
    levels, data, final = tr.encode_slice(ct, base, delta, _window(ct))
    assert levels == wavelet.levels_for(*ct.shape) and final.dtype == ct.dtype
    np.testing.assert_array_equal(tr.decode_slice(base, levels, data, delta, _window(ct)), final)


def test_smaller_step_costs_more_and_gives_more(ct):
    base = np.zeros_like(ct)
    results = [tr.encode_slice(ct, base, d, _window(ct)) for d in (100.0, 30.0, 10.0, 3.0)]
    sizes = [len(r[1]) for r in results]
    quality = [prep.psnr(ct, r[2]) for r in results]
    assert sizes == sorted(sizes) and quality == sorted(quality)
    assert quality[-1] > 50 and quality[0] < 40


def test_adaptive_coding_costs_no_more_than_a_static_oracle(ct):
    """Even on a small 128x128 slice (little data to learn contexts from) the stream stays
    within 3 % of an ideal static code that knows each band's histogram for free (on
    512x512 slices it is well below it)."""
    q, _ = tr.quantized(ct.astype(np.float64) - ct.mean(), 30.0)

    def entropy_bits(a):
        _, counts = np.unique(a, return_counts=True)
        p = counts / counts.sum()
        return float(-(counts * np.log2(p)).sum())

    static = entropy_bits(q[0]) + sum(entropy_bits(b) for t in q[1:] for b in t)
    coded = 8 * len(tr.encode_bands(q, ct.shape))
    assert coded < 1.03 * static


@pytest.mark.parametrize("shape", [(37, 53), (1, 9), (16, 16), (5, 300)])
def test_any_slice_size_and_float_pixels(shape, rng):
    x = (rng.normal(size=shape) * 50).astype(np.float32)
    base = np.zeros_like(x)
    levels, data, final = tr.encode_slice(x, base, 0.5, _window(x))
    np.testing.assert_array_equal(tr.decode_slice(base, levels, data, 0.5, _window(x)), final)
    assert final.dtype == np.float32 and np.abs(final - x).max() < 5


def test_bands_round_trip_through_the_stream(rng):
    q, _ = tr.quantized(rng.normal(size=(40, 33)) * 300, 7.0)
    back = tr.decode_bands(tr.encode_bands(q, (40, 33)), (40, 33))
    np.testing.assert_array_equal(back[0], q[0])
    for a, b in zip(back[1:], q[1:]):
        for x, y in zip(a, b):
            np.testing.assert_array_equal(x, y)


def test_isolated_weak_coefficients_are_dropped():
    bands = wavelet.forward(np.zeros((32, 32)), 2)
    finest = [b.copy() for b in bands[-1]]
    n = wavelet.synthesis_norms(2)[-1][0]
    finest[0][5, 5] = 0.8 / n * 10.0  # 0.8 steps, alone: not worth its bits
    finest[0][10, 10] = 0.8 / n * 10.0  # 0.8 steps beside a strong neighbour: kept
    finest[0][10, 11] = 5.0 / n * 10.0
    q = tr.quantize(bands[:-1] + [tuple(finest)], 10.0, 2)
    assert q[-1][0][5, 5] == 0 and q[-1][0][10, 10] == 1 and q[-1][0][10, 11] == 5


@pytest.mark.parametrize("data", [b"", b"\x01\x02\x03", bytes(64), b"\xff" * 64, bytes(range(256)) * 3])
def test_garbage_streams_raise_container_errors_only(data, ct):
    try:
        out = tr.decode_slice(np.zeros_like(ct), wavelet.levels_for(*ct.shape), data, 5.0, _window(ct))
    except ContainerError:
        return
    assert out.shape == ct.shape and out.dtype == ct.dtype  # decodable garbage: still an image


def test_wrong_level_count_is_refused(ct):
    with pytest.raises(ContainerError, match="levels"):
        tr.decode_slice(np.zeros_like(ct), 2, b"", 5.0, _window(ct))


def _layered_file(path):
    """Two slices of the container test header (30x40) with a wavelet layer coded from
    fixed integer bands (so the bytes depend on no float arithmetic)."""
    h = make_header()
    _, packed = make_codes(h)
    rng = np.random.default_rng(5)
    shapes = wavelet.band_shapes(h.height, h.width, wavelet.levels_for(h.height, h.width))
    bands = []
    for s in range(h.slices):
        q = [rng.integers(-40, 41, shapes[0])]
        for level, t in enumerate(shapes[1:], 1):
            q.append(tuple(np.where(rng.random(sh) < 0.15 * level, 0, rng.integers(-9, 10, sh)) for sh in t))
        bands.append(q)
    layer = mlc.WaveletLayer(3.5, tr.RHO, [(len(shapes) - 1, tr.encode_bands(q, (h.height, h.width)))
                                                   for q in bands])
    mlc.write(path, h, packed, wavelet=layer)
    return h, bands


def test_golden_v1_3_bytes_and_contents(tmp_path):
    p = tmp_path / "g.mlc"
    h, bands = _layered_file(p)
    assert p.read_bytes() == GOLDEN_1_3.read_bytes(), "1.3 layout changed: files would not stay compatible"
    with mlc.Reader(GOLDEN_1_3) as r:
        assert r.version == (1, 3) and r.wavelet == (3.5, tr.RHO) and r.max_error is None
        for s in range(h.slices):
            levels, data = r.read_wavelet(s)
            back = tr.decode_bands(data, (h.height, h.width))
            assert levels == len(back) - 1
            np.testing.assert_array_equal(back[0], bands[s][0])
            np.testing.assert_array_equal(back[-1][2], bands[s][-1][2])
        r.verify_end()


def test_layer_is_kept_by_full_truncation_and_dropped_by_partial(tmp_path):
    p = tmp_path / "g.mlc"
    _layered_file(p)
    mlc.truncate(p, tmp_path / "all.mlc", 3)
    mlc.truncate(p, tmp_path / "two.mlc", 2)
    assert (tmp_path / "all.mlc").read_bytes() == p.read_bytes()
    with mlc.Reader(tmp_path / "two.mlc") as r:
        assert r.wavelet is None and r.version == (1, 1)
    assert mlc.prefix_sizes(p)[-1] == p.stat().st_size


def test_malformed_transform_index_is_refused(tmp_path):
    h = make_header()
    _, packed = make_codes(h)
    with pytest.raises(ContainerError, match="does not match"):
        mlc.write(tmp_path / "x.mlc", h, packed, wavelet=mlc.WaveletLayer(0.0, 0.1, [(1, b"")] * 2))
    with pytest.raises(ContainerError, match="does not match"):
        mlc.write(tmp_path / "x.mlc", h, packed, wavelet=mlc.WaveletLayer(1.0, 0.1, [(1, b"")]))
    good = tmp_path / "g.mlc"
    _layered_file(good)
    raw = bytearray(good.read_bytes())
    at = raw.index(b"XIDX")
    for offset, value, error in ((12, 7, UnsupportedVersionError), (13, 0xFF, ContainerError)):
        forged = bytearray(raw)
        forged[at + offset] = value  # transform id / the step's top byte (NaN)
        if offset == 13:
            forged[at + 12 + 8] = 0xFF
        body_len = int.from_bytes(forged[at + 4:at + 12], "little")
        import zlib

        forged[at + 12 + body_len:at + 16 + body_len] = zlib.crc32(bytes(forged[at:at + 12 + body_len])).to_bytes(4, "little")
        bad = tmp_path / "bad.mlc"
        bad.write_bytes(bytes(forged))
        with pytest.raises(error):
            mlc.Reader(bad)


def test_slices_coded_in_lockstep_give_each_slice_its_own_stream():
    """encode_bands_many / decode_bands_many / decode_slices code several slices at once
    (shared numpy work), yet every stream is byte for byte what the slice gives alone, also
    when the slices take different paths (one all zero, one dense, one sparse: their models
    halve counts at different calls) and in big flat bands whose counts pass the halving
    limit several times in one update."""
    rng = np.random.default_rng(3)
    shape = (512, 400)  # passes of 16384 positions: chunks of 4096, counts past 2x the limit
    levels = tr._levels(shape)
    slices = [np.zeros(shape), rng.laplace(0, 40, shape), rng.laplace(0, 6, shape) * (rng.random(shape) < 0.2)]
    bands = [tr.quantize(wavelet.forward(s, levels), 1.0, levels) for s in slices]
    alone = [tr.encode_bands(b, shape) for b in bands]
    assert tr.encode_bands_many(bands, shape) == alone
    for got, want in zip(tr.decode_bands_many(alone, shape), bands):
        np.testing.assert_array_equal(got[0], want[0])
        for g, w in zip(got[1:], want[1:]):
            for a, b in zip(g, w):
                np.testing.assert_array_equal(a, b)
    bases = np.full((3,) + shape, 100, np.int16)
    together = tr.decode_slices(bases, levels, alone, 2.0, (0.0, 4000.0))
    for i in range(3):
        np.testing.assert_array_equal(together[i], tr.decode_slice(bases[i], levels, alone[i], 2.0,
                                                                                   (0.0, 4000.0)))
    with pytest.raises(ContainerError, match="levels"):
        tr.decode_slices(bases, [levels, levels - 1, levels], alone, 2.0, (0.0, 4000.0))


@pytest.mark.parametrize("shape", [(1, 1), (5, 3), (16, 17), (33, 40), (150, 116), (257, 255)])
def test_compiled_quantizer_equals_the_numpy_one(shape):
    """Every integer of :func:`wavelet_layer.quantize` (compiled) equals the numpy
    definition's, from fine steps (large integers) to coarse ones (mostly isolated +-1,
    where the dead-zone rule decides), on smooth and noisy residuals."""
    rng = np.random.default_rng(shape[0] * 31 + shape[1])
    levels = wavelet.levels_for(*shape)
    smooth = np.cumsum(np.cumsum(rng.normal(0, 1, shape), 0), 1)
    for residual in (rng.normal(0, 40, shape), smooth, np.zeros(shape)):
        bands = wavelet.forward(residual, levels)
        for delta in (0.05, 1.0, 7.3, 40.0, 400.0):
            ours, numpy_ = tr.quantize(bands, delta, levels), tr.quantize_numpy(bands, delta, levels)
            np.testing.assert_array_equal(ours[0], numpy_[0])
            for a, b in zip(ours[1:], numpy_[1:]):
                for band, expected in zip(a, b):
                    assert band.dtype == expected.dtype == np.int64
                    np.testing.assert_array_equal(band, expected)


@pytest.mark.parametrize("dtype,window", [(np.int16, (-1024.0, 3071.0)), (np.uint16, (0.0, 4095.0)),
                                          (np.uint8, (0.0, 255.0)), (np.float32, (-1.5, 2.5))])
def test_compiled_finish_equals_the_numpy_one(dtype, window):
    """Clipping, rounding half to even (residuals at exact .5) and the cast, against the
    numpy definition, for a full base and for the broadcast constant base of a slice with
    no learned iteration."""
    rng = np.random.default_rng(3)
    lo, hi = window
    base = rng.uniform(lo, hi, (37, 29)).astype(dtype)
    residual = rng.normal(0, (hi - lo) / 4, base.shape)
    residual[::3] = np.round(residual[::3]) + 0.5  # ties
    for b in (base, np.broadcast_to(base[0, 0], base.shape)):
        np.testing.assert_array_equal(tr.finish(b, residual, window), tr.finish_numpy(b, residual, window))
        assert tr.finish(b, residual, window).dtype == dtype


def test_compiled_dequantizer_equals_the_numpy_one():
    rng = np.random.default_rng(5)
    for shape in ((1, 1), (16, 17), (150, 116)):
        levels = wavelet.levels_for(*shape)
        q = tr.quantize(wavelet.forward(rng.normal(0, 40, shape), levels), 2.5, levels)
        for rho in (tr.RHO, 0.0, 0.5):
            ours, numpy_ = tr.dequantize(q, 2.5, levels, rho), tr.dequantize_numpy(q, 2.5, levels, rho)
            np.testing.assert_array_equal(ours[0], numpy_[0])
            for a, b in zip(ours[1:], numpy_[1:]):
                for band, expected in zip(a, b):
                    np.testing.assert_array_equal(band, expected)
