"""Inter-slice prediction for the wavelet and bounded-error layers, on a real MR volume
(the bundled atlas slices): what the decoder reconstructs, the intra/inter switch, key
slices, the bound over predicted bases, and the same integers under another thread count
and process."""

import hashlib
import os
import subprocess
import sys

import numpy as np
import pytest

from medcodec import prep
from medcodec.coding import bounded_error, interslice, wavelet_layer
from medcodec.coding.layers import BoundedErrorCodec
from medcodec.io.images import read_image
from medcodec.samples import sample_path


@pytest.fixture(scope="module")
def volume():
    import SimpleITK as sitk

    array = sitk.GetArrayFromImage(read_image(sample_path()))
    return np.ascontiguousarray(array[10:34, 20:100, 10:110]).astype(np.uint16)  # 24 slices of 80x100


def _constant_bases(vol):
    window = prep.window_of(vol)
    return window, np.full(vol.shape, interslice._mid(window, vol.dtype), vol.dtype)


def _bytes(records):
    return sum(len(r.record[1]) for r in records) + sum(r.mode * (1 + len(r.weights)) for r in records)


def test_decoder_reconstructs_the_encoders_slices_bit_for_bit(volume):
    window, bases = _constant_bases(volume)
    records, finals = interslice.encode_volume(volume, bases, 40.0, window, key_interval=8)
    assert any(r.mode == interslice.INTER for r in records)
    decoded = interslice.decode_volume(bases, records, 40.0, window)
    np.testing.assert_array_equal(decoded, finals)
    # and each slice is what the intra wavelet decoder makes of its stream over that base
    mid = interslice._mid(window, volume.dtype)
    for t, r in enumerate(records):
        base = bases[t] if r.mode == interslice.INTRA else interslice.prediction(decoded[t - 1], r.weights, mid, window)
        np.testing.assert_array_equal(wavelet_layer.decode_slice(base, *r.record, 40.0, window), decoded[t])


def test_thin_slices_cost_fewer_bits_than_intra_at_the_same_step(volume):
    window, bases = _constant_bases(volume)
    inter, fi = interslice.encode_volume(volume, bases, 40.0, window, key_interval=16)
    intra, fa = interslice.encode_volume(volume, bases, 40.0, window, key_interval=16, inter=False)
    assert _bytes(inter) < 0.95 * _bytes(intra)
    assert prep.psnr(volume, fi) > prep.psnr(volume, fa) - 0.5  # about the same quality


def test_unrelated_slices_stay_intra():
    rng = np.random.default_rng(3)
    vol = rng.integers(0, 4000, (6, 64, 64)).astype(np.uint16)  # no slice predicts another
    window, bases = _constant_bases(vol)
    records, _ = interslice.encode_volume(vol, bases, 40.0, window, key_interval=0)
    intra, _ = interslice.encode_volume(vol, bases, 40.0, window, key_interval=0, inter=False)
    assert _bytes(records) <= _bytes(intra)  # the switch never pays more than intra
    assert sum(r.mode for r in records) <= 1


def test_every_key_slice_is_intra_and_chains_cover_the_volume(volume):
    window, bases = _constant_bases(volume)
    records, _ = interslice.encode_volume(volume, bases, 40.0, window, key_interval=5)
    assert all(records[t].mode == interslice.INTRA for t in range(0, len(records), 5))
    assert [list(c) for c in interslice.chains(12, 5)] == [[0, 1, 2, 3, 4], [5, 6, 7, 8, 9], [10, 11]]
    assert [list(c) for c in interslice.chains(3, 0)] == [[0, 1, 2]]


def test_a_slice_predicting_itself_gets_unit_weights(volume):
    window, _ = _constant_bases(volume)
    mid = interslice._mid(window, volume.dtype)
    w = interslice.weights_for(volume[5], volume[5], mid)
    assert len(w) == interslice.band_count(volume.shape[1:])
    assert set(w.tolist()) == {interslice.WEIGHT_SCALE}
    # unit weights: the prediction is the slice itself (up to the lifting's float rounding)
    assert np.abs(interslice.prediction(volume[5], w, mid, window).astype(int) - volume[5]).max() <= 1


def test_a_first_inter_slice_is_refused(volume):
    window, bases = _constant_bases(volume)
    records, _ = interslice.encode_volume(volume[:3], bases[:3], 40.0, window, key_interval=0)
    bad = [interslice.SliceRecord(interslice.INTER, records[1].weights, records[0].record)]
    with pytest.raises(ValueError):
        interslice.decode_volume(bases[:1], bad, 40.0, window)


_DECODE_ELSEWHERE = """
import hashlib, pickle, sys
import numpy as np
from medcodec.coding import interslice
bases, records, window = pickle.load(open(sys.argv[1], "rb"))
out = interslice.decode_volume(bases, records, 40.0, window, threads=1)
print(hashlib.sha256(out.tobytes()).hexdigest())
"""


def test_another_process_with_one_thread_decodes_the_same_integers(volume, tmp_path):
    import pickle

    window, bases = _constant_bases(volume)
    records, finals = interslice.encode_volume(volume, bases, 40.0, window, key_interval=8, threads=2)
    path = tmp_path / "coded.pkl"
    path.write_bytes(pickle.dumps((bases, records, window)))
    env = dict(os.environ, MEDCODEC_THREADS="1", OMP_NUM_THREADS="1")
    out = subprocess.run([sys.executable, "-c", _DECODE_ELSEWHERE, str(path)], capture_output=True, text=True,
                         env=env, check=True)
    assert out.stdout.strip() == hashlib.sha256(finals.tobytes()).hexdigest()


@pytest.mark.parametrize("max_error", [0, 2])
def test_bounded_error_chains_keep_the_bound_and_cost_less_than_intra(volume, max_error):
    window, bases = _constant_bases(volume)
    codec = BoundedErrorCodec(max_error, key_interval=8, window=window)
    coded = codec.encode_slices(volume, bases)
    records, finals = [r for r, _ in coded], np.stack([f for _, f in coded])
    assert np.abs(finals.astype(np.int64) - volume).max() <= max_error  # against the original, not the coder
    np.testing.assert_array_equal(codec.decode_slices(bases, records), finals)
    assert all(records[t].mode == interslice.INTRA for t in (0, 8, 16))
    # each slice: the single-slice bounded-error decoder over the prediction from the slice
    # before, starting from the adaptive models that slice's decode ended with (coding 1)
    mid = interslice._mid(window, volume.dtype)
    for t in (1, 9):
        r = records[t]
        assert r.mode == interslice.INTER and records[t - 1].mode == interslice.INTRA
        _, models = bounded_error.decode_one(bases[t - 1], records[t - 1].record, max_error)
        base = interslice.prediction(finals[t - 1], r.weights, mid, window)
        np.testing.assert_array_equal(bounded_error.decode_one(base, r.record, max_error, models=models)[0], finals[t])
    intra = BoundedErrorCodec(max_error).encode_slices(volume, bases)
    inter_bytes = sum(len(r.record) + r.mode * (1 + len(r.weights)) for r in records)
    assert inter_bytes < sum(len(d) for d, _ in intra)
