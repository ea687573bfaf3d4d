"""Inter-slice prediction in ``.mlc`` files (ZPRD: format 1.4 with the wavelet layer, 1.5
with the bounded-error layer): the pipeline's round trip, random access bounded by the key
interval, the golden files, rate control's and the lossless default's choice, and the
refusals."""

import hashlib
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from medcodec import api, format as mlc, prep
from medcodec.coding import interslice
from medcodec.errors import ContainerError, InputError
from medcodec.format.reader import Reader
from medcodec.pipeline import decode, encode
from medcodec.ratecontrol import compress_to

GOLDEN_1_4 = Path(__file__).parent.parent / "data" / "golden_v1_4.mlc"  # 1.4: inter-slice prediction
# SHA-256 of its decoded voxels, pinned when the file was written (12 slices, key interval 4)
GOLDEN_1_4_SHA256 = "e1a0aee6bdd5d62db124aa04d6a53b57f9a58ca47e80f41b5526e4c2df56ce6c"
# 1.5: a lossless volume with inter-slice prediction (the 12 slices below, key interval 4):
# it must decode to exactly those voxels
GOLDEN_1_5 = Path(__file__).parent.parent / "data" / "golden_v1_5.mlc"
# 1.6: the same volume, RESD coding 1 (adaptive low bits, models carried along chains)
GOLDEN_1_6 = Path(__file__).parent.parent / "data" / "golden_v1_6.mlc"


@pytest.fixture(scope="module")
def volume():
    import SimpleITK as sitk

    from medcodec.io.images import read_image
    from medcodec.samples import sample_path

    array = sitk.GetArrayFromImage(read_image(sample_path()))
    return np.ascontiguousarray(array[14:26, 30:110, 10:106]).astype(np.uint16)  # 12 real slices of 80x96


# the shipped checkpoint, named (the suite's default model is a tiny test model)
SHIPPED = (Path(__file__).parent.parent.parent / "checkpoints" / "DEFAULT").read_text().strip()


def _inter_file(vol, path, key=4, step=48.0):
    """An inter-coded file over no learned iterations (what rate control writes)."""
    return encode.compress(vol, path, iterations=0, transform_step=step, key_interval=key,
                           overwrite=True, model_id=SHIPPED)


def test_round_trip_is_what_the_encoder_measured_and_smaller_than_intra(volume, tmp_path):
    stats = _inter_file(volume, tmp_path / "v.mlc")
    decoded, h = decode.decompress(tmp_path / "v.mlc")
    assert h.version == (1, 4)
    assert prep.psnr(volume, decoded) == stats.psnr and prep.max_abs_error(volume, decoded) == stats.max_abs_error
    facts = api.info(tmp_path / "v.mlc")
    assert facts["interslice"]["key_interval"] == 4 and facts["interslice"]["inter_slices"] >= 6
    intra = encode.compress(volume, tmp_path / "i.mlc", iterations=0, transform_step=48.0,
                            overwrite=True, model_id=SHIPPED)
    assert mlc.read_header(tmp_path / "i.mlc").version == (1, 3)  # intra files keep the older version
    assert stats.bytes < intra.bytes


def test_one_slice_decodes_from_at_most_the_key_interval(volume, tmp_path, monkeypatch):
    _inter_file(volume, tmp_path / "v.mlc", key=4)
    full, _ = decode.decompress(tmp_path / "v.mlc")
    read = []
    original = Reader.read_wavelet
    monkeypatch.setattr(Reader, "read_wavelet", lambda self, i: read.append(i) or original(self, i))
    for s in (0, 3, 7, 11):
        read.clear()
        one, _ = decode.decode_slices(tmp_path / "v.mlc", slices=[s])
        np.testing.assert_array_equal(one[0], full[s])
        assert len(read) <= 4 and max(read) == s and min(read) >= s - s % 4
    two, _ = decode.decode_slices(tmp_path / "v.mlc", slices=[9, 2])  # any order, as asked
    np.testing.assert_array_equal(two, full[[9, 2]])


def _golden_hash(decoded):
    return hashlib.sha256(np.ascontiguousarray(decoded).tobytes()).hexdigest()


def test_golden_v1_4_decodes_to_the_same_image():
    decoded, h = decode.decompress(GOLDEN_1_4)
    assert h.version == (1, 4) and h.size == (96, 80, 12)
    with Reader(GOLDEN_1_4) as r:
        assert r.prediction.key_interval == 4 and int(r.prediction.modes.sum()) == 9
    assert _golden_hash(decoded) == GOLDEN_1_4_SHA256


def test_forged_predictions_are_refused(volume, tmp_path):
    h = mlc.read_header(GOLDEN_1_4)
    good = mlc.SlicePrediction(4, np.array([0, 1, 1, 1] * 3, np.uint8), np.zeros((12, 19), np.int8))
    assert mlc.SlicePrediction.decode(good.encode(), h).key_interval == 4
    for modes in ([1] + [0] * 11, [0, 1, 1, 1, 1] + [0] * 7, [0, 2] + [0] * 10):  # inter first / key / unknown
        bad = mlc.SlicePrediction(4, np.array(modes, np.uint8), np.zeros((12, 19), np.int8))
        with pytest.raises(ContainerError):
            mlc.SlicePrediction.decode(bad.encode(), h)
    with pytest.raises(ContainerError):
        mlc.SlicePrediction.decode(good.encode()[:-1], h)


def test_bad_requests_say_what_to_do(volume, tmp_path):
    with pytest.raises(InputError, match="transform_step"):
        encode.compress(volume, tmp_path / "x.mlc", iterations=1, key_interval=4)
    with pytest.raises(InputError, match="3-D"):
        encode.compress(volume[0], tmp_path / "x.mlc", iterations=1, transform_step=8.0, key_interval=4)
    with pytest.raises(InputError, match="key_interval"):
        encode.compress(volume, tmp_path / "x.mlc", iterations=1, transform_step=8.0, key_interval=-1)
    with pytest.raises(InputError, match="no-interslice"):
        api.compress(volume, tmp_path / "x.mlc", iterations=2, interslice=False)
    with pytest.raises(InputError, match="residual layer"):  # no learned iterations and nothing else
        encode.compress(volume, tmp_path / "x.mlc", iterations=0)
    assert not (tmp_path / "x.mlc").exists()


def test_rate_control_predicts_volumes_and_can_be_told_not_to(volume, tmp_path):
    inter = compress_to(volume, tmp_path / "p.mlc", psnr=45.0, model_id=SHIPPED)
    intra = compress_to(volume, tmp_path / "q.mlc", psnr=45.0, interslice=False, model_id=SHIPPED)
    assert inter.psnr >= 45.0 and intra.psnr >= 45.0
    assert api.info(tmp_path / "p.mlc")["interslice"] is not None and api.info(tmp_path / "q.mlc")["interslice"] is None
    assert inter.bytes < intra.bytes


def test_lossless_volumes_predict_slices_and_decode_exactly_without_the_network(volume, tmp_path):
    stats = api.compress(volume, tmp_path / "l.mlc", max_error=0, model_id=SHIPPED)  # the default: 0 iterations
    assert stats.iterations == 0
    decoded, h = decode.decompress(tmp_path / "l.mlc")
    assert h.version == (1, 6)
    np.testing.assert_array_equal(decoded, volume)
    facts = api.info(tmp_path / "l.mlc")
    assert facts["residual_layer"] == "bounded-error" and facts["interslice"]["inter_slices"] >= 6
    intra = api.compress(volume, tmp_path / "i.mlc", max_error=0, interslice=False, model_id=SHIPPED)
    assert intra.iterations == 0 and api.info(tmp_path / "i.mlc")["interslice"] is None
    assert stats.bytes < intra.bytes
    # no learned iterations: a fresh process decodes it without importing JAX
    code = ("import sys, hashlib, medcodec; a = medcodec.decompress(sys.argv[1])[0]; "
            "print('jax' in sys.modules, hashlib.sha256(a.tobytes()).hexdigest())")
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path / "l.mlc")], capture_output=True, text=True,
                         check=True).stdout.split()
    assert out == ["False", _golden_hash(volume)]


def test_max_error_volumes_keep_the_bound_and_decode_one_slice_from_its_chain(volume, tmp_path, monkeypatch):
    api.compress(volume, tmp_path / "e.mlc", max_error=2, model_id=SHIPPED)
    full, _ = decode.decompress(tmp_path / "e.mlc")
    assert prep.max_abs_error(volume, full) <= 2
    read = []
    original = Reader.read_bounded_error
    monkeypatch.setattr(Reader, "read_bounded_error", lambda self, i: read.append(i) or original(self, i))
    for s in (0, 5, 11):
        read.clear()
        one, _ = decode.decode_slices(tmp_path / "e.mlc", slices=[s])
        np.testing.assert_array_equal(one[0], full[s])
        assert len(read) <= 16 and max(read) == s


def test_golden_v1_5_decodes_to_the_original_voxels(volume):
    decoded, h = decode.decompress(GOLDEN_1_5)
    assert h.version == (1, 5)
    with Reader(GOLDEN_1_5) as r:
        assert r.max_error == 0 and r.prediction.key_interval == 4 and int(r.prediction.modes.sum()) >= 6
    np.testing.assert_array_equal(decoded, volume)  # lossless: the oracle is the image itself


def test_golden_v1_6_decodes_to_the_original_voxels_and_is_what_an_encode_writes(volume, tmp_path):
    decoded, h = decode.decompress(GOLDEN_1_6)
    assert h.version == (1, 6)
    with Reader(GOLDEN_1_6) as r:
        assert r.max_error == 0 and r.prediction.key_interval == 4 and int(r.prediction.modes.sum()) >= 6
        assert r.bounded_error_coding == 1
    np.testing.assert_array_equal(decoded, volume)
    encode.compress(volume, tmp_path / "g.mlc", iterations=0, max_error=0, model_id=SHIPPED, key_interval=4)
    assert (tmp_path / "g.mlc").read_bytes() == GOLDEN_1_6.read_bytes(), "the 1.6 bitstream changed"
    assert GOLDEN_1_6.stat().st_size < GOLDEN_1_5.stat().st_size  # coding 1 costs less than coding 0


def test_a_prediction_that_does_not_fit_the_bounded_error_layer_is_refused(volume, tmp_path):
    api.compress(volume, tmp_path / "l.mlc", max_error=0, model_id=SHIPPED)
    with Reader(tmp_path / "l.mlc") as r:
        h, p = r.header, r.prediction
        codes = [[r.read_codes(s, 0)] for s in range(h.slices)]
        layer = mlc.BoundedErrorLayer(0, [r.read_bounded_error(s) for s in range(h.slices)])
    layer.prediction = mlc.SlicePrediction(p.key_interval, p.modes[:-1], p.weights[:-1])  # one slice short
    with pytest.raises(ContainerError, match="inter-slice prediction"):
        mlc.write(tmp_path / "bad.mlc", h, codes, bounded_error=layer, tiles=r.tiles)
    assert not (tmp_path / "bad.mlc").exists()


def test_a_volume_with_no_predicted_slice_gets_no_prediction_chunk(tmp_path):
    # no slice predicts another: noise and flat slices in turn (neither the pixels nor the
    # adaptive models a slice ends with help the next one)
    noise = np.random.default_rng(5).integers(0, 4000, (4, 48, 48)).astype(np.uint16)
    noise[1::2] = 7
    api.compress(noise, tmp_path / "n.mlc", max_error=0, model_id=SHIPPED)
    decoded, h = decode.decompress(tmp_path / "n.mlc")
    np.testing.assert_array_equal(decoded, noise)
    assert h.version == (1, 6) and api.info(tmp_path / "n.mlc")["interslice"] is None
