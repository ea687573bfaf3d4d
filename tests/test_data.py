"""Data catalog and patch sampling (no training on evaluation images)."""

import numpy as np
import pytest

from medcodec.data.catalog import FORBIDDEN_IN_TRAINING, entries
from medcodec.data.patches import PatchSampler, normalise, slices_of


def test_no_evaluation_image_or_twin_in_training():
    train = entries("train")
    evals = entries("eval")
    assert train and evals
    for e in train:
        assert not any(tag in e.member for tag in FORBIDDEN_IN_TRAINING), e.member
    for e in evals:
        assert any(tag in e.member for tag in FORBIDDEN_IN_TRAINING), e.member


def test_slices_along_all_axes():
    v = np.zeros((70, 80, 90), np.float32)
    s = slices_of(v, 64)
    assert len(s) == 70 + 80 + 90
    assert len(slices_of(np.zeros((1, 100, 100)), 64)) == 1
    assert slices_of(np.zeros((5, 10, 10)), 64) == []


def test_patch_sampler_shapes_range_and_seed():
    rng = np.random.default_rng(0)
    vols = [rng.integers(-1000, 2000, (4, 80, 80)).astype(np.float32), np.zeros((1, 100, 120))]
    b1 = PatchSampler(vols, 32, seed=3).batch(16)
    b2 = PatchSampler(vols, 32, seed=3).batch(16)
    assert b1.shape == (16, 32, 32, 1) and b1.dtype == np.float32
    assert b1.min() >= -0.5 - 1e-6 and b1.max() <= 0.5 + 1e-6
    np.testing.assert_array_equal(b1, b2)


def test_patch_sampler_needs_big_enough_slices():
    with pytest.raises(ValueError, match="at least 64"):
        PatchSampler([np.zeros((3, 10, 10))], 64)


def test_normalise_maps_to_unit_range():
    v = normalise(np.array([[-1000.0, 3000.0]]))
    np.testing.assert_allclose(v, [[-0.5, 0.5]])


def test_pack_round_trip_and_evaluation_images_are_refused(tmp_path):
    """A training pack reads back exactly; a pack holding an evaluation image (by catalog
    name or by a forbidden tag, e.g. a twin) is refused for training, as is a pack of the
    wrong role."""
    from medcodec.data.pack import read_pack, write_pack
    from medcodec.errors import InputError

    vol = np.arange(2 * 8 * 8, dtype=np.int32).reshape(2, 8, 8) - 50
    ok = write_pack(tmp_path / "train.npz", {"ct_small": vol}, role="train")
    back = read_pack(ok)
    assert list(back) == ["ct_small"] and np.array_equal(back["ct_small"], vol)
    eval_name = entries("eval")[0].name
    write_pack(tmp_path / "bad.npz", {"ct_small": vol, eval_name: vol}, role="train")
    with pytest.raises(InputError, match=f"evaluation images.*{eval_name}"):
        read_pack(tmp_path / "bad.npz")
    twin = f"cr_chest_{FORBIDDEN_IN_TRAINING[0]}J2KR"
    write_pack(tmp_path / "twin.npz", {twin: vol}, role="train")
    with pytest.raises(InputError, match="evaluation images"):
        read_pack(tmp_path / "twin.npz")
    write_pack(tmp_path / "eval.npz", {"ct_small": vol}, role="eval")
    with pytest.raises(InputError, match="'eval' images, not 'train'"):
        read_pack(tmp_path / "eval.npz")
