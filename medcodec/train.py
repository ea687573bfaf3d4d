"""Training entry point: ``medcodec train --config tiny --steps N --out runs/x``.

A plain loop: Adam with warm-up and cosine decay, global-norm clipping, L1 loss averaged
over all iterations (each iteration's reconstruction should be as good as it can be, so
every prefix of a file is a good image). The run folder holds an orbax
``CheckpointManager`` (resumable: a killed run continues from its last save) and
``metrics.jsonl``; :func:`medcodec.checkpoint.export` turns the result into a shipped
inference checkpoint.
"""

from __future__ import annotations

import functools
import json
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax

from .model import codec
from .model.config import CodecConfig


def _global_norm(tree) -> jax.Array:
    tree_api = getattr(optax, "tree", None)
    return tree_api.norm(tree) if hasattr(tree_api, "norm") else optax.global_norm(tree)


def make_optimizer(lr: float, steps: int, warmup: int = 200) -> optax.GradientTransformation:
    schedule = optax.warmup_cosine_decay_schedule(0.0, lr, min(warmup, max(steps // 10, 1)), steps, lr * 0.05)
    return optax.chain(optax.clip_by_global_norm(1.0), optax.adam(schedule))


def loss_fn(params, x, rng, config: CodecConfig, iterations: int):
    l1 = codec.train_forward(params, x, rng, config=config, iterations=iterations)
    return jnp.mean(l1), l1


@functools.partial(jax.jit, static_argnames=("config", "iterations", "optimizer"), donate_argnums=(0, 1))
def train_step(params, opt_state, x, rng, *, config, iterations, optimizer):
    """One Adam step; returns (params, opt_state, metrics)."""
    (loss, l1), grads = jax.value_and_grad(loss_fn, has_aux=True)(params, x, rng, config, iterations)
    updates, opt_state = optimizer.update(grads, opt_state, params)
    params = optax.apply_updates(params, updates)
    return params, opt_state, {"loss": loss, "l1_per_iteration": l1, "grad_norm": _global_norm(grads)}


def train(config: CodecConfig, out: Path, steps: int, batch: int = 16, patch: int = 64,
          lr: float = 1e-3, seed: int = 0, iterations: int | None = None,
          save_every: int = 200, max_seconds: float | None = None, volumes=None,
          log=print) -> dict:
    """Train (or resume) in ``out``; returns the final parameters."""
    import orbax.checkpoint as ocp

    from .data.patches import PatchSampler

    iterations = iterations or config.max_iterations
    out = Path(out).absolute()
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.json").write_text(config.to_json())
    if volumes is None:
        from .data.fetch import load_role

        volumes = list(load_role("train").values())
    optimizer = make_optimizer(lr, steps)
    params = codec.init(config, jax.random.PRNGKey(seed))
    opt_state = optimizer.init(params)
    mngr = ocp.CheckpointManager(out / "state", options=ocp.CheckpointManagerOptions(max_to_keep=2))
    start = 0
    if mngr.latest_step() is not None:
        start = mngr.latest_step()
        target = {"params": params, "opt_state": opt_state}
        restored = mngr.restore(start, args=ocp.args.StandardRestore(target))
        params, opt_state = restored["params"], restored["opt_state"]
        log(f"resumed from step {start}")
    # the sampler is re-seeded from the step so a resumed run draws fresh, reproducible data
    sampler = PatchSampler(volumes, patch, seed=seed * 1_000_003 + start)
    key = jax.random.fold_in(jax.random.PRNGKey(seed + 1), start)
    t0 = time.time()
    step = start
    with open(out / "metrics.jsonl", "a", encoding="utf-8") as mlog:
        while step < steps:
            x = jnp.asarray(sampler.batch(batch))
            key, sub = jax.random.split(key)
            params, opt_state, m = train_step(params, opt_state, x, sub, config=config,
                                              iterations=iterations, optimizer=optimizer)
            step += 1
            if step % 50 == 0 or step == steps:
                rec = {"step": step, "loss": float(m["loss"]), "grad_norm": float(m["grad_norm"]),
                       "l1_first_last": [float(m["l1_per_iteration"][0]), float(m["l1_per_iteration"][-1])],
                       "seconds": round(time.time() - t0, 1)}
                mlog.write(json.dumps(rec) + "\n")
                mlog.flush()
                log(json.dumps(rec))
            timeout = max_seconds is not None and time.time() - t0 > max_seconds
            if step % save_every == 0 or step == steps or timeout:
                mngr.save(step, args=ocp.args.StandardSave({"params": params, "opt_state": opt_state}))
            if timeout:
                log(f"stopping at step {step}: --max-seconds reached")
                break
    mngr.wait_until_finished()
    return jax.device_get(params)
