"""The persistent XLA compilation cache: on by default in the chosen folder, off on request,
and a second process finds the programs the first one compiled."""

import os
import subprocess
import sys

SCRIPT = """
import jax, jax.numpy as jnp
from medcodec.model.runtime import enable_compilation_cache
print("DIR", enable_compilation_cache())
jax.jit(lambda x: jnp.tanh(x) @ x)(jnp.ones((32, 32))).block_until_ready()
"""


def _run(env_cache):
    env = dict(os.environ, MEDCODEC_XLA_CACHE=str(env_cache), JAX_PLATFORMS="cpu")
    r = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    return r.stdout


def test_second_process_compiles_nothing_new(tmp_path):
    cache = tmp_path / "xla"
    assert f"DIR {cache}" in _run(cache)
    first = sorted(p.name for p in cache.iterdir())
    assert first  # the first process wrote compiled programs
    _run(cache)
    assert sorted(p.name for p in cache.iterdir()) == first  # the second one only read them


def test_cache_can_be_turned_off(tmp_path):
    assert "DIR None" in _run("0")
