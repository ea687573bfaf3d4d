"""Training entry point: ``medcodec train --config tiny --steps N --out runs/x``.

Adam with warm-up and cosine decay, global-norm clipping, L1 loss averaged over all
iterations (each iteration's reconstruction should be as good as it can be, so every
prefix of a file is a good image). Data parallel: a 1-D ``Mesh`` over every device, the
batch sharded along it, parameters and optimizer state replicated, so one command runs
on one CPU, one GPU or a pod slice (``distributed=True`` calls
``jax.distributed.initialize`` and each host samples its own share of the batch).
A config with an integer decoder (``quant``) trains quantization-aware, starting from the
float checkpoint ``quant.init_from``: ``medcodec train --config tiny-int``.

The run folder holds ``config.json``, ``train.json`` (the options), ``metrics.jsonl``,
``state/`` (orbax ``CheckpointManager``, last full state: a killed run resumes from it),
and ``best/`` (parameters with the lowest validation loss so far, ``best.json`` says which
step). :func:`medcodec.train.export.export_run` turns either into a shipped checkpoint.
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


def _write_run_files(out: Path, config: CodecConfig, settings: dict) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.json").write_text(config.to_json())
    (out / "train.json").write_text(json.dumps(settings))


class _Checkpoints:
    """The run's orbax managers: the last state (for resuming) and the best validation step."""

    def __init__(self, out: Path):
        import orbax.checkpoint as ocp

        self.ocp = ocp
        keep_one = ocp.CheckpointManagerOptions(max_to_keep=1)
        self.last = ocp.CheckpointManager(out / "state", options=keep_one)
        self.best_mngr = ocp.CheckpointManager(out / "best", options=keep_one)
        self.best_file = out / "best.json"
        self.best = (json.loads(self.best_file.read_text()) if self.best_file.exists()
                     else {"step": None, "val_loss": float("inf")})

    def restore(self, params, opt_state, log) -> tuple[int, dict, object]:
        """(start step, params, optimizer state): the last saved state, if any."""
        start = self.last.latest_step()
        if start is None:
            return 0, params, opt_state
        restored = self.last.restore(start, args=self.ocp.args.StandardRestore(
            {"params": params, "opt_state": opt_state}))
        log(f"resumed from step {start}")
        return start, restored["params"], restored["opt_state"]

    def save(self, step: int, params, opt_state, val_loss: float) -> None:
        self.last.save(step, args=self.ocp.args.StandardSave({"params": params, "opt_state": opt_state}))
        if val_loss < self.best["val_loss"]:
            self.best_mngr.save(step, args=self.ocp.args.StandardSave(params))
            self.best = {"step": step, "val_loss": val_loss}
            self.best_mngr.wait_until_finished()
            self.best_file.write_text(json.dumps(self.best))

    def close(self) -> None:
        self.last.wait_until_finished()
        self.best_mngr.wait_until_finished()


def _metrics(m, step: int, since: tuple[int, float], t0: float) -> dict:
    """One metrics.jsonl record from a step's metrics (``since``: step and time of the last)."""
    now = time.time()
    return {"step": step, "loss": float(m["loss"]), "grad_norm": float(m["grad_norm"]),
            "l1_first_last": [float(m["l1_per_iteration"][0]), float(m["l1_per_iteration"][-1])],
            "steps_per_s": round((step - since[0]) / max(now - since[1], 1e-9), 2),
            "seconds": round(now - t0, 1)}


def _batches(volumes, patch: int, seed: int, start: int, val_per_host: int, per_host: int, mesh):
    """(fixed validation batch, prefetcher of training batches) for this host."""
    from ..data.patches import PatchSampler

    # validation patches: fixed, from the training volumes (the evaluation images stay unseen)
    val_x = global_batch(PatchSampler(volumes, patch, seed=10_000_019 + jax.process_index()).batch(val_per_host), mesh)
    # each host draws its own share; re-seeded from the step so a resumed run stays reproducible
    sampler = PatchSampler(volumes, patch, seed=(seed * 1_000_003 + start) * 1009 + jax.process_index())
    return val_x, Prefetcher(sampler, per_host)


def initial_params(config: CodecConfig, seed: int = 0) -> dict:
    """Random parameters, or for a config with ``quant.init_from`` the weights of that
    (float) checkpoint: quantization-aware fine-tuning starts from the float model."""
    params = codec.init(config, jax.random.PRNGKey(seed))
    start = config.quant.init_from if config.quant is not None else None
    if start is None:
        return params
    from ..model import checkpoint

    base = checkpoint.load(start)
    shapes = jax.tree_util.tree_map(np.shape, params)
    if jax.tree_util.tree_map(np.shape, base.params) != shapes:
        raise InputError(f"checkpoint {start} does not have the architecture of config {config.name!r}")
    return jax.tree_util.tree_map(jnp.asarray, base.params)


def train(config: CodecConfig, out: Path, steps: int, batch: int = 16, patch: int = 64,
          lr: float = 1e-3, seed: int = 0, iterations: int | None = None,
          save_every: int = 200, max_seconds: float | None = None, volumes=None,
          data: str | Path | None = None, compute_dtype: str = "float32",
          distributed: bool = False, log_every: int = 50, val_batch: int = 32,
          log=print) -> dict:
    """Train (or resume) in ``out``; returns the final parameters (host numpy).

    ``batch`` is the global batch; it must divide evenly over devices and hosts.
    """
    if distributed:
        jax.distributed.initialize()
    mesh = make_mesh()
    n_dev, n_proc = len(jax.devices()), jax.process_count()
    if batch % n_dev or batch % n_proc:
        raise InputError(f"batch {batch} must be a multiple of the {n_dev} devices and {n_proc} hosts")
    iterations = iterations or config.max_iterations
    out = Path(out).absolute()
    _write_run_files(out, config, dict(
        steps=steps, batch=batch, patch=patch, lr=lr, seed=seed, iterations=iterations,
        compute_dtype=compute_dtype, devices=n_dev, hosts=n_proc, platform=jax.devices()[0].platform))
    volumes = _load_volumes(data) if volumes is None else volumes
    optimizer = make_optimizer(lr, steps)
    params = initial_params(config, seed)
    checkpoints = _Checkpoints(out)
    start, params, opt_state = checkpoints.restore(params, optimizer.init(params), log)
    params, opt_state = replicate((params, opt_state), mesh)
    train_step = make_train_step(config, optimizer, iterations, mesh, compute_dtype)
    eval_step = make_eval_step(config, iterations, mesh)
    val_x, prefetch = _batches(volumes, patch, seed, start, val_batch // n_proc, batch // n_proc, mesh)
    key = jax.random.fold_in(jax.random.PRNGKey(seed + 1), start)
    t0 = time.time()
    since, step = (start, t0), start
    try:
        with open(out / "metrics.jsonl", "a", encoding="utf-8") as mlog:
            while step < steps:
                key, sub = jax.random.split(key)
                params, opt_state, m = train_step(params, opt_state, global_batch(prefetch.next(), mesh), sub)
                step += 1
                timeout = max_seconds is not None and time.time() - t0 > max_seconds
                saving = step % save_every == 0 or step == steps or timeout
                if step % log_every == 0 or saving:
                    rec = _metrics(m, step, since, t0)
                    since = (step, time.time())
                    if saving:
                        rec["val_loss"] = float(eval_step(params, val_x))
                        checkpoints.save(step, params, opt_state, rec["val_loss"])
                    mlog.write(json.dumps(rec) + "\n")
                    mlog.flush()
                    log(json.dumps(rec))
                if timeout:
                    log(f"stopping at step {step}: --max-seconds reached")
                    break
    finally:
        prefetch.close()
        checkpoints.close()
    return jax.device_get(params)
