"""Data-parallel training: a step sharded over 4 (fake CPU) devices equals the 1-device step;
bf16 compute stays close to float32."""

import os
import subprocess
import sys
import textwrap

import numpy as np

SCRIPT = textwrap.dedent("""
    import jax, numpy as np
    assert len(jax.devices()) == 4, jax.devices()
    from medcodec.model import codec
    from medcodec.model.config import TEST_TINY
    from medcodec.train import loop as T
    opt = T.make_optimizer(1e-3, 100)
    x = np.random.default_rng(0).uniform(-0.5, 0.5, (8, 32, 32, 1)).astype(np.float32)
    rng = jax.random.PRNGKey(3)
    out = {}
    for n in (1, 4):
        mesh = T.make_mesh(jax.devices()[:n])
        params = codec.init(TEST_TINY, jax.random.PRNGKey(0))
        opt_state = opt.init(params)
        params, opt_state = T.replicate((params, opt_state), mesh)
        step = T.make_train_step(TEST_TINY, opt, 3, mesh)
        xb = T.global_batch(x, mesh)
        assert len(xb.sharding.device_set) == n
        for _ in range(2):
            params, opt_state, m = step(params, opt_state, xb, rng)
        leaves = jax.tree_util.tree_leaves(jax.device_get(params))
        out[n] = (float(m["loss"]), np.concatenate([l.ravel() for l in leaves]))
    print("LOSS", out[1][0], out[4][0])
    print("MAXDIFF", float(np.abs(out[1][1] - out[4][1]).max()))
""")


def test_sharded_step_equals_single_device_step():
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=4", JAX_PLATFORMS="cpu")
    r = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, env=env, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    vals = dict(line.split(" ", 1) for line in r.stdout.splitlines() if line[:4] in ("LOSS", "MAXD"))
    l1, l4 = map(float, vals["LOSS"].split())
    assert abs(l1 - l4) <= 1e-5 * abs(l1)
    # two Adam steps of lr ~1e-5 (warm-up) move parameters by ~1e-5; the shards agree to
    # float32 rounding of the all-reduce order
    assert float(vals["MAXDIFF"]) < 1e-6


def test_bf16_forward_is_close_to_float32():
    import jax

    from medcodec.model import codec
    from medcodec.model.config import TEST_TINY

    params = codec.init(TEST_TINY, jax.random.PRNGKey(0))
    x = np.random.default_rng(1).uniform(-0.5, 0.5, (2, 32, 32, 1)).astype(np.float32)
    f32 = codec.train_forward(params, x, None, config=TEST_TINY, iterations=3)
    bf16 = codec.train_forward(params, x, None, config=TEST_TINY, iterations=3, compute_dtype="bfloat16")
    assert bf16.dtype == np.float32
    assert not np.array_equal(np.asarray(f32), np.asarray(bf16))  # it really ran in bf16
    np.testing.assert_allclose(np.asarray(bf16), np.asarray(f32), rtol=0.03)
