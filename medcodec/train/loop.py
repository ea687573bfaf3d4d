"""Training entry point: ``medcodec train --config tiny --steps N --out runs/x``.

Adam with warm-up and cosine decay, global-norm clipping, L1 loss averaged over all
iterations (each iteration's reconstruction should be as good as it can be, so every
prefix of a file is a good image). Data parallel: a 1-D ``Mesh`` over every device, the
batch sharded along it, parameters and optimizer state replicated, so one command runs
on one CPU, one GPU or a pod slice (``distributed=True`` calls
``jax.distributed.initialize`` and each host samples its own share of the batch).

The run folder holds ``config.json``, ``train.json`` (the options), ``metrics.jsonl``,
``state/`` (orbax ``CheckpointManager``, last full state: a killed run resumes from it),
and ``best/`` (parameters with the lowest validation loss so far, ``best.json`` says which
step). :func:`medcodec.checkpoint.export_run` turns either into a shipped checkpoint.
"""

from __future__ import annotations

import json
import queue
import threading
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax

from ..errors import InputError
from ..model import codec
from ..model.config import CodecConfig


def _global_norm(tree) -> jax.Array:
    tree_api = getattr(optax, "tree", None)
    return tree_api.norm(tree) if hasattr(tree_api, "norm") else optax.global_norm(tree)


def make_optimizer(lr: float, steps: int, warmup: int = 200) -> optax.GradientTransformation:
    schedule = optax.warmup_cosine_decay_schedule(0.0, lr, min(warmup, max(steps // 10, 1)), steps, lr * 0.05)
    return optax.chain(optax.clip_by_global_norm(1.0), optax.adam(schedule))


def make_mesh(devices=None) -> jax.sharding.Mesh:
    """A 1-D data-parallel mesh (axis "data") over the given (default: all) devices."""
    return jax.sharding.Mesh(np.asarray(devices if devices is not None else jax.devices()), ("data",))


def make_train_step(config: CodecConfig, optimizer, iterations: int, mesh: jax.sharding.Mesh,
                    compute_dtype: str = "float32"):
    """Jitted ``step(params, opt_state, x, rng) -> (params, opt_state, metrics)``.

    x (N, P, P, 1) is sharded over the mesh's "data" axis; parameters, optimizer state and
    metrics are replicated (XLA inserts the gradient all-reduce). State buffers are donated.
    """
    P = jax.sharding.PartitionSpec
    rep = jax.sharding.NamedSharding(mesh, P())
    data = jax.sharding.NamedSharding(mesh, P("data"))

    def loss_fn(params, x, rng):
        l1 = codec.train_forward(params, x, rng, config=config, iterations=iterations,
                                 compute_dtype=compute_dtype)
        return jnp.mean(l1), l1

    def step(params, opt_state, x, rng):
        (loss, l1), grads = jax.value_and_grad(loss_fn, has_aux=True)(params, x, rng)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        params = optax.apply_updates(params, updates)
        return params, opt_state, {"loss": loss, "l1_per_iteration": l1, "grad_norm": _global_norm(grads)}

    return jax.jit(step, in_shardings=(rep, rep, data, rep), out_shardings=(rep, rep, rep),
                   donate_argnums=(0, 1))


def make_eval_step(config: CodecConfig, iterations: int, mesh: jax.sharding.Mesh):
    """Jitted validation loss: mean L1 over iterations with the deterministic binarizer."""
    P = jax.sharding.PartitionSpec
    rep = jax.sharding.NamedSharding(mesh, P())
    data = jax.sharding.NamedSharding(mesh, P("data"))

    def evaluate(params, x):
        return jnp.mean(codec.train_forward(params, x, None, config=config, iterations=iterations))

    return jax.jit(evaluate, in_shardings=(rep, data), out_shardings=rep)


def replicate(tree, mesh: jax.sharding.Mesh):
    """Put a pytree on every device of the mesh, typed exactly as the step's outputs (so the
    second step does not recompile)."""
    return jax.device_put(tree, jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec()))


def global_batch(local: np.ndarray, mesh: jax.sharding.Mesh) -> jax.Array:
    """Assemble the global batch from each host's share, sharded along "data"."""
    sharding = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec("data"))
    if jax.process_count() == 1:
        return jax.device_put(local, sharding)
    return jax.make_array_from_process_local_data(sharding, local)


class Prefetcher:
    """Draws batches from a sampler in a background thread (host work overlaps the step)."""

    def __init__(self, sampler, batch: int, depth: int = 4):
        self._q: queue.Queue = queue.Queue(depth)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(sampler, batch), daemon=True)
        self._thread.start()

    def _run(self, sampler, batch):
        while not self._stop.is_set():
            item = sampler.batch(batch)
            while not self._stop.is_set():
                try:
                    self._q.put(item, timeout=0.1)
                    break
                except queue.Full:
                    continue

    def next(self) -> np.ndarray:
        return self._q.get()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


def _load_volumes(data: str | Path | None):
    if data is not None:
        from ..data.pack import read_pack

        return list(read_pack(Path(data), role="train").values())
    from ..data.fetch import load_role

    return list(load_role("train").values())


def train(config: CodecConfig, out: Path, steps: int, batch: int = 16, patch: int = 64,
          lr: float = 1e-3, seed: int = 0, iterations: int | None = None,
          save_every: int = 200, max_seconds: float | None = None, volumes=None,
          data: str | Path | None = None, compute_dtype: str = "float32",
          distributed: bool = False, log_every: int = 50, val_batch: int = 32,
          log=print) -> dict:
    """Train (or resume) in ``out``; returns the final parameters (host numpy).

    ``batch`` is the global batch; it must divide evenly over devices and hosts.
    """
    import orbax.checkpoint as ocp

    from ..data.patches import PatchSampler

    if distributed:
        jax.distributed.initialize()
    mesh = make_mesh()
    n_dev, n_proc = len(jax.devices()), jax.process_count()
    if batch % n_dev or batch % n_proc:
        raise InputError(f"batch {batch} must be a multiple of the {n_dev} devices and {n_proc} hosts")
    iterations = iterations or config.max_iterations
    out = Path(out).absolute()
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.json").write_text(config.to_json())
    (out / "train.json").write_text(json.dumps(dict(
        steps=steps, batch=batch, patch=patch, lr=lr, seed=seed, iterations=iterations,
        compute_dtype=compute_dtype, devices=n_dev, hosts=n_proc, platform=jax.devices()[0].platform)))
    if volumes is None:
        volumes = _load_volumes(data)
    optimizer = make_optimizer(lr, steps)
    params = codec.init(config, jax.random.PRNGKey(seed))
    opt_state = optimizer.init(params)
    mngr = ocp.CheckpointManager(out / "state", options=ocp.CheckpointManagerOptions(max_to_keep=1))
    best_mngr = ocp.CheckpointManager(out / "best", options=ocp.CheckpointManagerOptions(max_to_keep=1))
    best_file = out / "best.json"
    best = json.loads(best_file.read_text()) if best_file.exists() else {"step": None, "val_loss": float("inf")}
    start = 0
    if mngr.latest_step() is not None:
        start = mngr.latest_step()
        target = {"params": params, "opt_state": opt_state}
        restored = mngr.restore(start, args=ocp.args.StandardRestore(target))
        params, opt_state = restored["params"], restored["opt_state"]
        log(f"resumed from step {start}")
    params, opt_state = replicate((params, opt_state), mesh)
    train_step = make_train_step(config, optimizer, iterations, mesh, compute_dtype)
    eval_step = make_eval_step(config, iterations, mesh)
    # validation patches: fixed, from the training volumes (the evaluation images stay unseen)
    val_x = global_batch(PatchSampler(volumes, patch, seed=10_000_019 + jax.process_index())
                         .batch(val_batch // n_proc), mesh)
    # each host draws its own share; re-seeded from the step so a resumed run stays reproducible
    sampler = PatchSampler(volumes, patch, seed=(seed * 1_000_003 + start) * 1009 + jax.process_index())
    prefetch = Prefetcher(sampler, batch // n_proc)
    key = jax.random.fold_in(jax.random.PRNGKey(seed + 1), start)
    t0 = time.time()
    t_log, step_log = t0, start
    step = start
    try:
        with open(out / "metrics.jsonl", "a", encoding="utf-8") as mlog:
            while step < steps:
                x = global_batch(prefetch.next(), mesh)
                key, sub = jax.random.split(key)
                params, opt_state, m = train_step(params, opt_state, x, sub)
                step += 1
                timeout = max_seconds is not None and time.time() - t0 > max_seconds
                saving = step % save_every == 0 or step == steps or timeout
                if step % log_every == 0 or saving:
                    now = time.time()
                    rec = {"step": step, "loss": float(m["loss"]), "grad_norm": float(m["grad_norm"]),
                           "l1_first_last": [float(m["l1_per_iteration"][0]), float(m["l1_per_iteration"][-1])],
                           "steps_per_s": round((step - step_log) / max(now - t_log, 1e-9), 2),
                           "seconds": round(now - t0, 1)}
                    t_log, step_log = now, step
                    if saving:
                        rec["val_loss"] = float(eval_step(params, val_x))
                    mlog.write(json.dumps(rec) + "\n")
                    mlog.flush()
                    log(json.dumps(rec))
                if saving:
                    mngr.save(step, args=ocp.args.StandardSave({"params": params, "opt_state": opt_state}))
                    if rec["val_loss"] < best["val_loss"]:
                        best_mngr.save(step, args=ocp.args.StandardSave(params))
                        best = {"step": step, "val_loss": rec["val_loss"]}
                        best_mngr.wait_until_finished()
                        best_file.write_text(json.dumps(best))
                if timeout:
                    log(f"stopping at step {step}: --max-seconds reached")
                    break
    finally:
        prefetch.close()
        mngr.wait_until_finished()
        best_mngr.wait_until_finished()
    return jax.device_get(params)
