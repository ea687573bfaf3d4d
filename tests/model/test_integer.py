"""The integer-exact decoder against an independent numpy int64 reference, its 2^24 bound,
its tables, and its place in the codec (closed loop, iteration maps, training)."""

import hashlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from medcodec.errors import CheckpointError
from medcodec.model import codec, integer
from medcodec.model.config import TEST_INT, TINY_INT, CodecConfig, QuantConfig

from . import int_reference

CFG = TEST_INT


def _scaled_params(seed=0, scale=3.0):
    """Random weights scaled up so gates and cell states use much of their ranges."""
    p = codec.init(CFG, jax.random.PRNGKey(seed))
    return jax.tree_util.tree_map(lambda a: np.asarray(a) * scale, p)


@pytest.fixture(scope="module")
def params():
    return codec.prepare_params(CFG, _scaled_params())


def _codes(t, n=2, h=2, w=3, seed=1):
    rng = np.random.default_rng(seed)
    return rng.choice(np.array([-1, 1], np.int8), size=(t, n, h, w, CFG.bits))


def test_decode_equals_numpy_int64_reference(params):
    codes = _codes(3)
    got = np.asarray(codec.decode(params, jnp.asarray(codes), config=CFG))
    ref = int_reference.decode(params["int_decoder"], CFG, codes)
    np.testing.assert_array_equal(got * 2.0**16, ref.astype(np.float64))
    assert np.abs(ref).max() > 2**12  # a non-trivial image, not all zeros


def test_reference_uses_the_ranges(params):
    """The random model drives gates into the tables' tails and cells well past +-1."""
    codes = _codes(3)
    rec = int_reference.decode(params["int_decoder"], CFG, codes)
    assert len(np.unique(rec)) > 100


def test_shift_round_matches_floor_definition():
    rng = np.random.default_rng(0)
    v = rng.integers(-2**23, 2**23, 10_000).astype(np.int32)
    s = rng.integers(-4, 12, 10_000).astype(np.int32)
    v = np.where(s < 0, v >> 8, v)  # left shifts: keep within int32
    got = np.asarray(integer.shift_round(jnp.asarray(v), jnp.asarray(s)))
    np.testing.assert_array_equal(got, int_reference.rshift(v, s))
    assert int(integer.shift_round(jnp.int32(5), jnp.int32(1))) == 3  # 2.5 -> 3 (half up)
    assert int(integer.shift_round(jnp.int32(-5), jnp.int32(1))) == -2  # -2.5 -> -2 (half up)


def test_tables_pinned_and_match_math_module():
    sig, tanh = integer.tables(TINY_INT.quant)
    rs, rt = int_reference.ref_tables(TINY_INT.quant)
    np.testing.assert_array_equal(sig, rs)
    np.testing.assert_array_equal(tanh, rt)
    assert sig.shape == tanh.shape == (1024,)
    digest = hashlib.sha256(sig.astype("<i4").tobytes() + tanh.astype("<i4").tobytes()).hexdigest()[:16]
    assert digest == TABLES_SHA256_16


TABLES_SHA256_16 = "de74faf70a8b09b4"


def test_accumulator_bound_of_the_shipped_config():
    """Every partial sum of every GEMM, in any order, stays below 2^24 (exact in float32)."""
    b = integer.accumulator_bounds(TINY_INT)
    # lstm0: K = 3*3*96 + 96 = 960 products of |a| <= 127 and |w| <= 127, plus |bias| <= 2^20
    assert b["lstm0"] == 960 * 127 * 127 + 2**20 == 16_532_416
    assert max(b.values()) < 2**24


def test_bound_violation_refused():
    wide = CodecConfig(name="wide", decoder_channels=(128, 96, 64, 32), quant=QuantConfig())
    p = codec.init(wide, jax.random.PRNGKey(0))
    with pytest.raises(CheckpointError, match="2\\^24"):
        codec.prepare_params(wide, p)


def test_weight_exponent_is_the_largest_that_fits():
    m = np.array([0.0001, 0.3, 0.4960, 0.4961, 1.0, 2.0, 63.0])
    e = integer.weight_exponent(m, 127)
    assert np.all(np.rint(np.ldexp(m, e)) <= 127)
    assert np.all(np.rint(np.ldexp(m, e + 1)) > 127)


def test_float_config_json_unchanged():
    """Float models' ids (a hash over this JSON) must not move."""
    assert "quant" not in CodecConfig().to_json()
    again = CodecConfig.from_json(TINY_INT.to_json())
    assert again == TINY_INT and hash(again) == hash(TINY_INT)


def test_encoder_closed_loop_is_the_decoder(params):
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.uniform(-0.5, 0.5, (2, 32, 48, 1)).astype(np.float32))
    codes, sse, recon = codec.encode(params, x, config=CFG, iterations=3)
    dec = codec.decode(params, codes, config=CFG)
    np.testing.assert_array_equal(np.asarray(dec), np.asarray(recon))
    ref = int_reference.decode(params["int_decoder"], CFG, np.asarray(codes))
    np.testing.assert_array_equal(np.asarray(dec) * 2.0**16, ref.astype(np.float64))


def test_iteration_map(params):
    codes = _codes(3)
    full = np.asarray(codec.decode(params, jnp.asarray(codes), config=CFG))
    all3 = np.full((2, 2, 3, 1), 3, np.int32)
    np.testing.assert_array_equal(
        np.asarray(codec.decode(params, jnp.asarray(codes), config=CFG, iteration_map=jnp.asarray(all3))), full)
    imap = all3.copy()
    imap[0, 1, 2, 0] = 0
    got = np.asarray(codec.decode(params, jnp.asarray(codes), config=CFG, iteration_map=jnp.asarray(imap)))
    assert not got[0, 16:32, 32:48].any()  # a cell at 0 iterations stays at the zero image
    masked = codes.copy()
    masked[:, 0, 1, 2] = 0
    ref = int_reference.decode(params["int_decoder"], CFG, masked)
    ref[0, 16:32, 32:48] = 0
    np.testing.assert_array_equal(got * 2.0**16, ref.astype(np.float64))


def test_qat_simulation_tracks_the_integer_decoder(params):
    """The training-time float simulation stays close to the integer network."""
    rng = np.random.default_rng(3)
    x = jnp.asarray(rng.uniform(-0.5, 0.5, (1, 32, 32, 1)).astype(np.float32))
    raw = {k: v for k, v in params.items() if k != "int_decoder"}
    l1_sim = np.asarray(codec.train_forward(raw, x, None, config=CFG, iterations=3))
    _, _, recon = codec.encode(params, x, config=CFG, iterations=3)
    l1_int = float(jnp.mean(jnp.abs(x - recon)))
    assert abs(l1_sim[-1] - l1_int) < 0.02 * l1_int + 1e-3


def test_qat_gradients_flow():
    p = _scaled_params(scale=1.0)
    x = jnp.asarray(np.random.default_rng(0).uniform(-0.5, 0.5, (1, 32, 32, 1)).astype(np.float32))
    g = jax.grad(lambda p: jnp.mean(codec.train_forward(p, x, None, config=CFG, iterations=2)))(p)
    norms = jax.tree_util.tree_map(lambda a: float(jnp.abs(a).sum()), g)
    assert norms["decoder"]["lstm0"]["input_conv"]["kernel"] > 0
    assert norms["decoder"]["to_image"]["kernel"] > 0
    assert norms["encoder"]["stem"]["kernel"] > 0


@pytest.mark.parametrize("operand", ["float32", "bfloat16"])
def test_gemm_operand_types_give_the_same_integers(params, operand):
    """int8 x int8 -> int32 and the integers held in float32 / bfloat16 agree exactly."""
    codes = jnp.asarray(_codes(3))
    ref = np.asarray(codec.decode(params, codes, config=CFG))
    np.testing.assert_array_equal(np.asarray(codec.decode(params, codes, config=CFG, compute_dtype=operand)), ref)


def test_precision_policy_does_not_apply_to_integer_models():
    from medcodec.pipeline.precision import decode_precision

    for p in ("auto", "float32", "bfloat16"):
        assert decode_precision(p, layered=True, integer=True) is None  # nothing refused
        assert decode_precision(p, layered=False, integer=True) is None
    with pytest.raises(Exception, match="precision must be"):
        decode_precision("fp8", layered=False, integer=True)
