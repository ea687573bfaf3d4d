"""Training (:mod:`.loop`: data-parallel ConvLSTM training on every local device) and
export of a run as an inference checkpoint (:mod:`.export`). Imports JAX."""

from .export import export_run
from .loop import make_optimizer, train

__all__ = ["export_run", "make_optimizer", "train"]
