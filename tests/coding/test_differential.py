"""Every layer's compiled walk against the reference coders (numpy + constriction) that
wrote medcodec's streams before: the same bytes, the same decoded values, for random
inputs of awkward shapes, adaptive tiles, several slices at once and any thread count."""

import numpy as np
import pytest

from medcodec.coding import bounded_error, codes, wavelet, wavelet_layer
from medcodec.errors import ContainerError

from .reference import bounded_error as ref_bounded, codes as ref_codes, wavelet_layer as ref_wavelet


@pytest.mark.parametrize("seed", range(4))
def test_codes_equal_reference(seed):
    rng = np.random.default_rng(seed)
    n, t, h, w, bits = 3, 3, int(rng.integers(1, 10)), int(rng.integers(1, 10)), int(rng.integers(1, 5))
    x = np.where(rng.random((n, t, h, w, bits)) < rng.random(), 1, -1).astype(np.int8)
    counts = rng.integers(0, t + 1, (n, h, w)) if seed % 2 else None
    if counts is not None:  # cells past their count hold no codes
        for i in range(t):
            x[:, i][~(counts > i)] = 0
    chunks = codes.encode_slices(x, counts)
    assert chunks == ref_codes.encode_slices(x, counts)
    back = codes.decode_slices(chunks, (h, w, bits), counts)
    np.testing.assert_array_equal(back, ref_codes.decode_slices(chunks, (h, w, bits), counts))
    np.testing.assert_array_equal(back, x)
    # progressive: the first k iterations alone
    first = codes.decode_slices([c[:2] for c in chunks], (h, w, bits), counts)
    np.testing.assert_array_equal(first, x[:, :2])


@pytest.mark.parametrize("seed", range(4))
def test_bounded_error_equals_reference(seed):
    rng = np.random.default_rng(10 + seed)
    h, w = int(rng.integers(1, 60)), int(rng.integers(1, 60))
    base = rng.integers(0, 3000, (2, h, w)).astype(np.uint16)
    noise = rng.normal(0, [2, 40, 900, 0.3][seed], (2, h, w)).astype(np.int64)
    original = np.clip(base.astype(np.int64) + noise, 0, 65535).astype(np.uint16)
    e = [0, 1, 3, 0][seed]
    # coding 0: the reference is the coder of files up to 1.5
    ours, theirs = bounded_error.encode_slices(original, base, e, coding=0), ref_bounded.encode_slices(original, base, e)
    for i, ((data, final), (ref_data, ref_final)) in enumerate(zip(ours, theirs)):
        assert data == ref_data
        np.testing.assert_array_equal(final, ref_final)
        assert np.abs(final.astype(np.int64) - original[i]).max() <= e
    decoded = bounded_error.decode_slices(base, [d for d, _ in ours], e, coding=0)
    np.testing.assert_array_equal(decoded, np.stack([f for _, f in ours]))


@pytest.mark.parametrize("shape,step", [((1, 1), 1.0), ((1, 37), 2.0), ((45, 3), 0.5), ((70, 66), 4.0),
                                         ((130, 97), 12.0)])
def test_wavelet_bands_equal_reference(shape, step):
    rng = np.random.default_rng(shape[0] * 1000 + shape[1])
    residual = rng.normal(0, 20, shape).cumsum(axis=0) + rng.laplace(0, 5, shape)
    q, _ = wavelet_layer.quantized(residual, step)
    data = wavelet_layer.encode_bands(q, shape)
    assert data == ref_wavelet.encode_bands_many([q], shape)[0]
    back = wavelet_layer.decode_bands(data, shape)
    flat = lambda bands: np.concatenate([bands[0].ravel()] + [b.ravel() for lev in bands[1:] for b in lev])
    np.testing.assert_array_equal(flat(back), flat(q))


def test_results_do_not_depend_on_the_thread_count():
    rng = np.random.default_rng(5)
    originals = rng.integers(0, 4000, (6, 40, 33)).astype(np.uint16)
    bases = np.clip(originals.astype(np.int64) + rng.integers(-30, 30, originals.shape), 0, 4000).astype(np.uint16)
    one = wavelet_layer.encode_slices(originals, bases, 3.0, (0.0, 4000.0), threads=1)
    four = wavelet_layer.encode_slices(originals, bases, 3.0, (0.0, 4000.0), threads=4)
    assert [(lev, d) for lev, d, _ in one] == [(lev, d) for lev, d, _ in four]
    datas = [d for _, d, _ in one]
    np.testing.assert_array_equal(wavelet_layer.decode_slices(bases, one[0][0], datas, 3.0, (0.0, 4000.0), threads=1),
                                  wavelet_layer.decode_slices(bases, one[0][0], datas, 3.0, (0.0, 4000.0), threads=3))
    assert [d for d, _ in bounded_error.encode_slices(originals, bases, 1, threads=1)] == \
        [d for d, _ in bounded_error.encode_slices(originals, bases, 1, threads=4)]


def test_garbage_streams_raise_container_error():
    all_ones = np.full(16, 0xFF, np.uint8).tobytes()  # a point no encoder's interval holds
    with pytest.raises(ContainerError, match="wavelet layer chunk does not decode"):
        wavelet_layer.decode_bands(all_ones, (64, 64))
    with pytest.raises(ContainerError, match="bounded-error layer chunk does not decode"):
        bounded_error.decode_slice(np.zeros((32, 32), np.uint16), all_ones, 0)
    with pytest.raises(ContainerError, match="whole number"):
        bounded_error.decode_slice(np.zeros((32, 32), np.uint16), all_ones[:15], 0)


def test_decoded_residual_is_bitwise_the_numpy_dequantize_and_inverse():
    rng = np.random.default_rng(11)
    shape, delta, rho = (77, 64), 3.0, 0.15
    q, _ = wavelet_layer.quantized(rng.normal(0, 25, shape).cumsum(axis=1), delta, rho)
    data = wavelet_layer.encode_bands(q, shape)
    levels = wavelet_layer._levels(shape)
    numpy_way = wavelet.inverse_numpy(wavelet_layer.dequantize(wavelet_layer.decode_bands(data, shape), delta, levels, rho))
    np.testing.assert_array_equal(wavelet_layer._decoded_residual(data, shape, delta, rho), numpy_way)
