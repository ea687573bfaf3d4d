"""Turn a training run into an inference checkpoint (``medcodec export``)."""

from __future__ import annotations

from pathlib import Path

from ..errors import CheckpointError
from ..model.checkpoint import save
from ..model.config import CodecConfig


def export_run(run: Path, dest: Path, step: int | None = None, which: str = "best") -> str:
    """Save the parameters of a training run as an inference checkpoint in ``dest``.

    ``which`` is "best" (lowest validation loss; falls back to the last state for runs that
    have none) or "last"; ``step`` picks a step of the last-state manager. Returns the id.
    """
    import jax
    import orbax.checkpoint as ocp

    from ..model import codec
    from .loop import make_optimizer

    run = Path(run).absolute()
    try:
        config = CodecConfig.from_json((run / "config.json").read_text())
    except OSError as e:
        raise CheckpointError(f"{run} is not a training run folder (no config.json)") from e
    params = codec.init(config, jax.random.PRNGKey(0))
    best = ocp.CheckpointManager(run / "best") if (run / "best").is_dir() else None
    if which == "best" and step is None and best is not None and best.latest_step() is not None:
        return save(dest, config, best.restore(best.latest_step(), args=ocp.args.StandardRestore(params)))
    mngr = ocp.CheckpointManager(run / "state")
    step = step if step is not None else mngr.latest_step()
    if step is None:
        raise CheckpointError(f"{run} has no saved training state")
    target = {"params": params, "opt_state": make_optimizer(1e-3, 10).init(params)}
    restored = mngr.restore(step, args=ocp.args.StandardRestore(target))
    return save(dest, config, restored["params"])
