"""The pure core: shapes, binarizer, scan vs a plain loop, and the progressive property."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from medcodec.model import codec
from medcodec.model.codec import _step
from medcodec.model.config import TEST_TINY
from medcodec.model.layers import binarize, depth_to_space
from medcodec.model.networks import zero_states

CFG = TEST_TINY


@pytest.fixture(scope="module")
def params():
    return codec.init(CFG, jax.random.PRNGKey(0))


@pytest.fixture(scope="module")
def image():
    rng = np.random.default_rng(0)
    return jnp.asarray(rng.uniform(-0.5, 0.5, (2, 32, 48, 1)).astype(np.float32))


def test_param_count_pinned(params):
    n = sum(x.size for x in jax.tree_util.tree_leaves(params))
    # stem 80 + 3 enc lstm + to_bits 64 + from_bits 72 + 4 dec lstm + to_image 3
    assert n == 80 + 3 * (8 * 9 * 32 + 32 + 8 * 32) + 64 + 72 + (8 * 9 * 32 + 32 + 8 * 32) + 3 * (2 * 9 * 32 + 32 + 8 * 32) + 3


def test_encode_shapes_and_values(params, image):
    codes, sse, recon = codec.encode(params, image, config=CFG, iterations=3)
    assert codes.shape == (3, 2, 2, 3, CFG.bits)
    assert codes.dtype == jnp.int8
    assert set(np.unique(np.asarray(codes))) <= {-1, 1}
    assert sse.shape == (3, 2, 2, 3)  # per iteration, image and 16x16 code cell
    assert recon.shape == image.shape


def test_decode_matches_encoder_reconstruction(params, image):
    codes, sse, recon = codec.encode(params, image, config=CFG, iterations=3)
    dec = codec.decode(params, codes, config=CFG)
    np.testing.assert_allclose(np.asarray(dec), np.asarray(recon), atol=1e-5)
    err = np.sum((np.asarray(image) - np.asarray(dec)) ** 2, axis=(1, 2, 3))
    np.testing.assert_allclose(np.asarray(sse[-1]).sum(axis=(1, 2)), err, rtol=1e-4)


def test_scan_equals_python_loop(params, image):
    codes, _, _ = codec.encode(params, image, config=CFG, iterations=4)
    enc_state, dec_state = zero_states(CFG, 2, 32, 48)
    carry = (enc_state, dec_state, jnp.zeros_like(image))
    loop_codes = []
    for _ in range(4):
        carry, bits = _step(params, CFG, carry, image, None, None)
        loop_codes.append(np.asarray(bits).astype(np.int8))
    np.testing.assert_array_equal(np.asarray(codes), np.stack(loop_codes))


def test_prefix_of_longer_encode_equals_shorter_encode(params, image):
    long, _, _ = codec.encode(params, image, config=CFG, iterations=4)
    short, _, _ = codec.encode(params, image, config=CFG, iterations=2)
    np.testing.assert_array_equal(np.asarray(long[:2]), np.asarray(short))


def test_code_mask_zeroes_padding(params, image):
    mask = jnp.zeros((1, 2, 3, 1)).at[:, :1, :2].set(1.0)
    codes, _, _ = codec.encode(params, image, config=CFG, iterations=2, code_mask=mask)
    c = np.asarray(codes)
    assert np.all(c[:, :, 1:, :] == 0) and np.all(c[:, :, :, 2:] == 0)
    assert np.all(np.abs(c[:, :, :1, :2]) == 1)


def test_rejects_shape_not_multiple_of_factor(params):
    with pytest.raises(ValueError, match="multiples of 16"):
        codec.encode(params, jnp.zeros((1, 20, 32, 1)), config=CFG, iterations=1)


def test_binarizer_values_and_straight_through_gradient():
    x = jnp.linspace(-1, 1, 101)
    det = binarize(x)
    assert set(np.unique(np.asarray(det))) == {-1.0, 1.0}
    assert float(binarize(jnp.zeros(()))) == 1.0  # sign(0) = +1
    sto = binarize(jnp.full((20000,), 0.5), jax.random.PRNGKey(1))
    assert abs(float(sto.mean()) - 0.5) < 0.03  # E[b] = x
    g = jax.grad(lambda v: jnp.sum(binarize(v, jax.random.PRNGKey(0)) * 3.0))(x)
    np.testing.assert_allclose(np.asarray(g), 3.0)


def test_depth_to_space_layout():
    x = jnp.arange(8.0).reshape(1, 1, 1, 8)
    y = depth_to_space(x, 2)
    assert y.shape == (1, 2, 2, 2)
    np.testing.assert_array_equal(np.asarray(y[0, :, :, 0]), [[0, 2], [4, 6]])


def test_train_forward_is_differentiable_and_finite(params, image):
    def loss(p):
        return jnp.mean(codec.train_forward(p, image, jax.random.PRNGKey(3), config=CFG, iterations=2))

    value, grads = jax.value_and_grad(loss)(params)
    assert np.isfinite(float(value))
    norms = [float(jnp.abs(g).sum()) for g in jax.tree_util.tree_leaves(grads)]
    assert all(np.isfinite(norms)) and sum(n > 0 for n in norms) > len(norms) // 2


def test_iteration_map_freezes_cells_and_decoder_agrees(params, image):
    """Cells past their count get zero codes and keep their earlier reconstruction; the
    decoder given the same map reproduces the encoder's reconstruction exactly."""
    imap = jnp.asarray(np.array([[[1, 3, 0], [2, 3, 3]], [[3, 3, 3], [0, 1, 2]]], np.int32)[..., None])
    codes, sse, recon = codec.encode(params, image, config=CFG, iterations=3, iteration_map=imap)
    c, m = np.asarray(codes), np.asarray(imap)[..., 0]
    for t in range(3):
        assert np.all(c[t][m <= t] == 0) and np.all(np.abs(c[t][m > t]) == 1)
    dec = codec.decode(params, codes, config=CFG, iteration_map=imap)
    np.testing.assert_allclose(np.asarray(dec), np.asarray(recon), atol=1e-5)
    # a cell with count 0 stays at reconstruction 0; a frozen cell's error stops changing
    assert np.all(np.asarray(recon)[0, :16, 32:48] == 0)
    s = np.asarray(sse)
    assert s[0, 0, 0, 0] == s[1, 0, 0, 0] == s[2, 0, 0, 0]  # count 1: frozen after iteration 1
    assert s[0, 1, 0, 0] != s[1, 1, 0, 0]  # count 3: still improving


def test_full_iteration_map_equals_no_map(params, image):
    full = jnp.full((2, 2, 3, 1), 3, jnp.int32)
    a, _, ra = codec.encode(params, image, config=CFG, iterations=3)
    b, _, rb = codec.encode(params, image, config=CFG, iterations=3, iteration_map=full)
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    np.testing.assert_allclose(np.asarray(ra), np.asarray(rb), atol=1e-6)


def test_decode_stops_after_the_largest_count(params, image):
    """The decoder runs only as many iterations as the map's largest count: iterations past
    it would add nothing, so the result equals a plain loop over all of them, and codes
    there are never even read (NaN codes past the largest count leave the output finite)."""
    imap = jnp.asarray(np.array([[[1, 2, 0], [2, 1, 2]], [[0, 1, 1], [2, 2, 0]]], np.int32)[..., None])
    codes, _, recon = codec.encode(params, image, config=CFG, iterations=5, iteration_map=imap)
    _, dec_state = zero_states(CFG, 2, 32, 48)
    loop = jnp.zeros_like(image)
    for t in range(5):  # the reference: every stored iteration, masked
        dec_state, loop, _ = codec._decode_step(params, CFG, dec_state, loop, codes[t].astype(jnp.float32),
                                                None, imap, t, jnp.float32)
    dec = codec.decode(params, codes, config=CFG, iteration_map=imap)
    np.testing.assert_allclose(np.asarray(dec), np.asarray(loop), atol=1e-6)
    np.testing.assert_allclose(np.asarray(dec), np.asarray(recon), atol=1e-5)
    poisoned = np.asarray(codes).astype(np.float32)
    poisoned[2:] = np.nan  # the largest count is 2
    out = np.asarray(codec.decode(params, jnp.asarray(poisoned), config=CFG, iteration_map=imap))
    assert np.all(np.isfinite(out))
    np.testing.assert_allclose(out, np.asarray(dec), atol=1e-6)
    poisoned[1] = np.nan  # an iteration that does run: the NaN shows
    assert np.isnan(np.asarray(codec.decode(params, jnp.asarray(poisoned), config=CFG, iteration_map=imap))).any()
