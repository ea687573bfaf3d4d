"""The CDF 9/7 lifting transform: exact inverse for any size, band layout, normalisation."""

import numpy as np
import pytest

from medcodec.coding import wavelet


@pytest.mark.parametrize("h,w", [(512, 512), (155, 116), (17, 33), (1, 7), (3, 1), (2, 2), (31, 64)])
def test_inverse_restores_any_size(h, w, rng):
    x = rng.normal(size=(h, w)) * 1000
    levels = wavelet.levels_for(h, w)
    bands = wavelet.forward(x, levels)
    shapes = wavelet.band_shapes(h, w, levels)
    assert bands[0].shape == shapes[0]
    assert [tuple(b.shape for b in t) for t in bands[1:]] == list(shapes[1:])
    np.testing.assert_allclose(wavelet.inverse(bands), x, atol=1e-8)


def test_levels_keep_the_low_band_at_least_8_pixels():
    assert wavelet.levels_for(512, 512) == 6 and wavelet.band_shapes(512, 512, 6)[0] == (8, 8)
    assert wavelet.levels_for(150, 116) == 3 and wavelet.levels_for(15, 400) == 0


def test_transform_is_close_to_orthonormal():
    """Synthesis norms near 1 and DC gain 2 per level: one step fits every band."""
    norms = wavelet.synthesis_norms(5)
    flat = [norms[0]] + [n for t in norms[1:] for n in t]
    assert all(0.9 < n < 1.15 for n in flat)
    ll = wavelet.forward(np.ones((64, 64)), 1)[0]
    np.testing.assert_allclose(ll, 2.0, atol=1e-9)


def test_smooth_image_puts_energy_in_the_low_band():
    y, x = np.mgrid[0:128, 0:128]
    img = 100 * np.sin(x / 20.0) + 50 * np.cos(y / 15.0)
    bands = wavelet.forward(img, 4)
    low = float(np.sum(bands[0] ** 2))
    finest = sum(float(np.sum(b ** 2)) for b in bands[-1])
    high = sum(float(np.sum(b ** 2)) for t in bands[1:] for b in t)
    assert high < 0.02 * low and finest < 1e-4 * low


@pytest.mark.parametrize("h,w,levels", [(64, 64, 1), (128, 96, 2), (256, 192, 3)])
def test_matches_pywavelets_cdf97(h, w, levels, rng):
    """Against an independent implementation: PyWavelets' ``bior4.4`` is CDF 9/7 (filter
    convolution, not lifting). Away from the borders (where the two extend the signal
    differently: whole-sample symmetric here, periodic there; even sizes at every level, for
    which PyWavelets' periodization keeps the same sample grid) every band of every level
    agrees to 1e-9; PyWavelets' high-pass has the opposite sign, so LH and HL are negated
    and HH is not. Wrong lifting constants or scaling would miss by whole units."""
    pywt = pytest.importorskip("pywt")
    x = rng.normal(size=(h, w)) * 100
    ours = wavelet.forward(x, levels)
    theirs = pywt.wavedec2(x, "bior4.4", mode="periodization", level=levels)
    margin = 8  # where the border extensions' difference can reach, at every level

    def interior(a, b, sign=1.0):
        assert a.shape == b.shape
        assert a.shape[0] > 2 * margin and a.shape[1] > 2 * margin
        np.testing.assert_allclose(a[margin:-margin, margin:-margin], sign * b[margin:-margin, margin:-margin],
                                   atol=1e-9)

    interior(ours[0], theirs[0])
    for (lh, hl, hh), (c_h, c_v, c_d) in zip(ours[1:], theirs[1:]):
        interior(lh, c_v, -1.0)
        interior(hl, c_h, -1.0)
        interior(hh, c_d)


@pytest.mark.parametrize("shape", [(1, 1), (1, 17), (17, 1), (2, 3), (33, 40), (155, 116), (257, 255)])
def test_compiled_inverse_is_bitwise_the_numpy_lifting(shape):
    rng = np.random.default_rng(shape[0] * 7 + shape[1])
    levels = wavelet.levels_for(*shape)
    bands = wavelet.forward(rng.normal(0, 100, shape), levels)
    noisy = [bands[0] + rng.normal(0, 1, bands[0].shape)] + [tuple(b * 1.5 for b in level) for level in bands[1:]]
    for b in (bands, noisy):
        np.testing.assert_array_equal(wavelet.inverse(b), wavelet.inverse_numpy(b))


@pytest.mark.parametrize("shape,levels", [((1, 1), 1), ((1, 17), 2), ((17, 1), 2), ((2, 3), 2), ((3, 2), 1),
                                          ((33, 40), 3), ((155, 116), 4), ((257, 255), 5), ((512, 512), 6)])
def test_compiled_forward_is_bitwise_the_numpy_lifting(shape, levels):
    rng = np.random.default_rng(shape[0] * 7 + shape[1])
    x = rng.normal(0, 100, shape)
    ours, numpy_ = wavelet.forward(x, levels), wavelet.forward_numpy(x, levels)
    np.testing.assert_array_equal(ours[0], numpy_[0])
    assert len(ours) == len(numpy_) == levels + 1
    for a, b in zip(ours[1:], numpy_[1:]):
        for band, expected in zip(a, b):
            assert band.shape == expected.shape
            np.testing.assert_array_equal(band, expected)
    ints = rng.integers(-3000, 3000, shape).astype(np.int16)  # what the layers pass: integer residuals
    np.testing.assert_array_equal(wavelet.forward(ints, levels)[0], wavelet.forward_numpy(ints, levels)[0])
