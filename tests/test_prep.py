import math

import numpy as np
import pytest

from medcodec import prep
from medcodec.errors import InputError, UnsupportedPixelTypeError


@pytest.mark.parametrize("dtype,lo,hi", [("int16", -32768, 32767), ("uint16", 0, 65535),
                                         ("uint8", 0, 255), ("int32", -2000, 3000)])
def test_normalise_round_trip_is_exact_for_integers(dtype, lo, hi, rng):
    a = rng.integers(lo, hi, size=(3, 17, 9), endpoint=True).astype(dtype)
    a.flat[0], a.flat[1] = lo, hi
    w = prep.window_of(a)
    x = prep.normalise(a, w)
    assert x.min() == pytest.approx(-0.5) and x.max() == pytest.approx(0.5)
    np.testing.assert_array_equal(prep.denormalise(x, w, dtype), a)


def test_denormalise_clips_to_window():
    out = prep.denormalise(np.array([-0.9, 0.0, 0.9]), (-1000.0, 1000.0), "int16")
    np.testing.assert_array_equal(out, [-1000, 0, 1000])


def test_constant_image():
    a = np.full((4, 4), 7, np.uint16)
    x = prep.normalise(a, prep.window_of(a))
    np.testing.assert_array_equal(prep.denormalise(x, prep.window_of(a), "uint16"), a)


def test_coded_size_buckets():
    assert prep.coded_size(1, 16) == 32
    assert prep.coded_size(116, 16) == 128
    assert prep.coded_size(150, 16) == 160
    assert prep.coded_size(484, 16) == 512
    assert prep.coded_size(512, 16) == 512
    assert prep.coded_size(1955, 16) == 1984
    assert all(prep.coded_size(n, 16) % 16 == 0 and prep.coded_size(n, 16) >= n for n in range(1, 700))
    assert prep.code_grid(116, 16) == 8


def test_check_array_rejects_bad_input():
    with pytest.raises(InputError, match="NaN"):
        prep.check_array(np.array([[1.0, np.nan]], np.float32))
    with pytest.raises(InputError, match="NaN or Inf"):
        prep.check_array(np.array([[1.0, np.inf]], np.float32))
    with pytest.raises(UnsupportedPixelTypeError):
        prep.check_array(np.zeros((4, 4), np.complex64))
    with pytest.raises(InputError, match="2D, 3D or 4D"):
        prep.check_array(np.zeros(5, np.int16))
    with pytest.raises(InputError, match="empty"):
        prep.check_array(np.zeros((0, 5), np.int16))


def test_psnr_uses_own_dynamic_range():
    ref = np.array([0.0, 100.0, 50.0, 50.0])
    test = ref + np.array([1.0, -1.0, 1.0, -1.0])
    assert prep.psnr(ref, test) == pytest.approx(40.0)
    assert prep.psnr(ref, ref) == math.inf
    assert prep.max_abs_error(ref, test) == 1.0


def test_batch_size_is_power_of_two():
    for h, w in [(512, 512), (128, 160), (2048, 2048)]:
        b = prep.batch_size_for(h, w)
        assert b >= 1 and b & (b - 1) == 0
