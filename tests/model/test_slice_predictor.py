"""The ConvLSTM slice predictor (medcodec.model.slice_predictor): shapes, zero head,
scan == step by step."""

import jax
import numpy as np

from medcodec.model import slice_predictor as sp


def _random_head(params, key):
    """The params with a random (nonzero) output head."""
    p = jax.tree_util.tree_map(lambda x: x, params)
    k = p["params"]["head"]["kernel"]
    p["params"]["head"]["kernel"] = 0.1 * jax.random.normal(key, k.shape)
    return p


def test_zero_head_predicts_previous_slice_exactly():
    params = sp.init(jax.random.PRNGKey(0), sp.TINY)
    vol = np.random.default_rng(0).integers(0, 3000, (5, 14, 10)).astype(np.uint16)
    pred = sp.predict_volume(params, vol, (0.0, 3000.0))
    assert pred.shape == (4, 14, 10)
    assert np.array_equal(pred, vol[:-1].astype(np.float64))


def test_scan_equals_step_by_step_and_shapes():
    params = _random_head(sp.init(jax.random.PRNGKey(1), sp.TINY), jax.random.PRNGKey(2))
    assert sp.config_of(params) == sp.TINY
    vol = np.random.default_rng(1).normal(100, 30, (6, 11, 13)).astype(np.float32)  # odd sides: padding
    window = (float(vol.min()), float(vol.max()))
    scanned = sp.predict_volume(params, vol, window)
    stepper = sp.Stepper(params, vol.shape[1:], window)
    stepped = np.stack([stepper.step(vol[t]) for t in range(len(vol) - 1)])
    assert scanned.shape == stepped.shape == (5, 11, 13)
    assert not np.allclose(scanned, vol[:-1])  # the head is not zero: the state matters
    np.testing.assert_allclose(scanned, stepped, rtol=0, atol=1e-3 * (window[1] - window[0]))
    stepper.reset()  # a reset starts from the zero state again
    np.testing.assert_allclose(stepper.step(vol[0]), scanned[0], rtol=0, atol=1e-3 * (window[1] - window[0]))


def test_state_carries_history():
    """The prediction of slice 2 depends on slice 0 (through the state), not only on slice 1."""
    params = _random_head(sp.init(jax.random.PRNGKey(3), sp.TINY), jax.random.PRNGKey(4))
    rng = np.random.default_rng(2)
    a = rng.normal(0, 1, (3, 8, 8)).astype(np.float32)
    b = a.copy()
    b[0] += 1.0
    pa, pb = sp.predict_volume(params, a, (-4.0, 4.0)), sp.predict_volume(params, b, (-4.0, 4.0))
    assert not np.allclose(pa[1], pb[1])


def test_save_load_round_trip(tmp_path):
    params = _random_head(sp.init(jax.random.PRNGKey(5), sp.TINY), jax.random.PRNGKey(6))
    sp.save(tmp_path / "p.npz", params)
    back = sp.load(tmp_path / "p.npz")
    for x, y in zip(jax.tree_util.tree_leaves(params), jax.tree_util.tree_leaves(back)):
        assert np.array_equal(np.asarray(x), np.asarray(y))
    assert sp.param_count(back) == sp.param_count(params)
