"""Data-parallel training in two local processes under ``jax.distributed`` (CPU), checked
against one process on the same global batch: the multi-host path of medcodec.train.loop
(make_mesh over all processes' devices, global_batch from each host's share, the jitted
step with its gradient all-reduce) run for real with more than one process."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import numpy as np

CHILD = r"""
import json, sys
import jax
rank, nproc, port = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
if nproc > 1:
    try:
        jax.config.update("jax_cpu_collectives_implementation", "gloo")
    except Exception:
        pass
    jax.distributed.initialize(f"127.0.0.1:{port}", num_processes=nproc, process_id=rank)
import numpy as np
from medcodec.model import codec
from medcodec.model.config import TEST_TINY
from medcodec.train import loop

cfg = TEST_TINY
mesh = loop.make_mesh()
opt = loop.make_optimizer(1e-3, 10, warmup=1)
params = codec.init(cfg, jax.random.PRNGKey(0))
params, opt_state = loop.replicate((params, opt.init(params)), mesh)
step = loop.make_train_step(cfg, opt, 2, mesh)
rng = np.random.default_rng(0)
losses = []
for i in range(2):
    full = rng.uniform(-0.5, 0.5, (4, 32, 32, 1)).astype(np.float32)  # the global batch
    share = full.shape[0] // jax.process_count()
    local = full[jax.process_index() * share:(jax.process_index() + 1) * share]
    params, opt_state, m = step(params, opt_state, loop.global_batch(local, mesh), jax.random.PRNGKey(i))
    losses.append(float(m["loss"]))
leaves = [np.asarray(jax.device_get(x)) for x in jax.tree_util.tree_leaves(params)]
print(json.dumps({"processes": jax.process_count(), "devices": len(jax.devices()), "losses": losses,
                  "params": [float(np.sum(np.abs(l))) for l in leaves],
                  "first": leaves[0].ravel()[:8].tolist()}))
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start(rank: int, nproc: int, port: int):
    env = dict(os.environ, JAX_PLATFORMS="cpu", MEDCODEC_XLA_CACHE="0")
    env.pop("XLA_FLAGS", None)
    return subprocess.Popen([sys.executable, "-c", CHILD, str(rank), str(nproc), str(port)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def _result(p) -> dict:
    out, err = p.communicate(timeout=600)
    assert p.returncode == 0, err[-3000:]
    return json.loads(out.strip().splitlines()[-1])


def test_two_processes_equal_one_on_the_same_global_batch():
    port = _free_port()
    procs = [_start(r, 2, port) for r in range(2)]
    two = [_result(p) for p in procs]
    one = _result(_start(0, 1, port))
    assert [r["processes"] for r in two] == [2, 2] and two[0]["devices"] == 2
    assert one["processes"] == 1
    # both hosts hold the same replicated parameters
    assert two[0]["params"] == two[1]["params"] and two[0]["first"] == two[1]["first"]
    # and they match the single process up to the all-reduce's summation order
    np.testing.assert_allclose(two[0]["losses"], one["losses"], rtol=1e-5)
    np.testing.assert_allclose(two[0]["params"], one["params"], rtol=1e-4)
    np.testing.assert_allclose(two[0]["first"], one["first"], rtol=1e-3, atol=1e-6)
