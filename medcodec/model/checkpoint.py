"""Inference checkpoints: a folder ``<config name>-<hash8>/`` holding

* ``config.json``  the :class:`CodecConfig` (the model is rebuilt from it, no guessing),
* ``params/``      the weights, an orbax ``StandardCheckpointer`` tree,
* ``MODEL_CARD.md`` data, steps, hardware and measured rate-distortion.

The model id written into every ``.mlc`` file is the folder name: the config name plus the
first 8 hex digits of a SHA-256 over the config and the weights (float32, little-endian,
leaves in sorted path order), so a file can only be decoded by the exact weights that
wrote it. ``checkpoints/DEFAULT`` names the shipped default.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import importlib.util
import os
from pathlib import Path

import numpy as np

from ..errors import CheckpointError, ModelMismatchError
from .config import CodecConfig


@dataclasses.dataclass(frozen=True, eq=False)
class Model:
    """A loaded model: its id, config and parameters (numpy or jax arrays)."""

    model_id: str
    config: CodecConfig
    params: dict
    path: Path | None = None

    @functools.cached_property
    def device_params(self):
        """The inference parameters (:func:`codec.prepare_params`: plus the integer decoder's
        for an integer model) on the default JAX device, transferred once per loaded model."""
        import jax

        from .codec import prepare_params

        return jax.device_put(prepare_params(self.config, self.params))


def _flatten(tree: dict, prefix: str = "") -> list[tuple[str, np.ndarray]]:
    out = []
    for k in sorted(tree):
        v = tree[k]
        key = f"{prefix}/{k}"
        out.extend(_flatten(v, key) if isinstance(v, dict) else [(key, np.asarray(v))])
    return out


def content_hash(config: CodecConfig, params: dict) -> str:
    """First 8 hex digits of SHA-256 over the config JSON and the float32 weights."""
    h = hashlib.sha256(config.to_json().encode())
    for key, arr in _flatten(params):
        h.update(key.encode())
        h.update(str(arr.shape).encode())
        h.update(np.ascontiguousarray(arr, dtype="<f4").tobytes())
    return h.hexdigest()[:8]


def search_paths() -> list[Path]:
    """Where checkpoints are looked for: ``$MEDCODEC_CHECKPOINTS`` (os.pathsep-separated),
    then the shipped ``checkpoints/`` folder (installed as package ``medcodec_checkpoints``)."""
    paths = [Path(p) for p in os.environ.get("MEDCODEC_CHECKPOINTS", "").split(os.pathsep) if p]
    spec = importlib.util.find_spec("medcodec_checkpoints")
    if spec is not None and spec.submodule_search_locations:
        paths.extend(Path(p) for p in spec.submodule_search_locations)
    repo = Path(__file__).resolve().parent.parent / "checkpoints"
    if repo.is_dir() and repo not in paths:
        paths.append(repo)
    return paths


def default_model_id() -> str:
    """The id named by ``DEFAULT`` in the first search path that has one."""
    for p in search_paths():
        f = p / "DEFAULT"
        if f.is_file():
            return f.read_text().strip()
    raise CheckpointError("no default checkpoint found; reinstall medcodec or set MEDCODEC_CHECKPOINTS")


def find(model_id: str) -> Path:
    """Folder of the checkpoint ``model_id``; ModelMismatchError if not installed."""
    for p in search_paths():
        cand = p / model_id
        if (cand / "config.json").is_file():
            return cand
    raise ModelMismatchError(
        f"model {model_id!r} is not installed (looked in: {', '.join(map(str, search_paths())) or 'nowhere'}); "
        "install the medcodec release that wrote the file or add its checkpoint folder to MEDCODEC_CHECKPOINTS")


def save(folder: Path, config: CodecConfig, params: dict, overwrite: bool = False) -> str:
    """Write an inference checkpoint into ``folder/<model id>``; returns the model id."""
    import orbax.checkpoint as ocp

    params = _to_numpy(params)
    model_id = f"{config.name}-{content_hash(config, params)}"
    target = (Path(folder) / model_id).absolute()
    if target.exists() and not overwrite:
        raise CheckpointError(f"{target} exists")
    target.mkdir(parents=True, exist_ok=True)
    (target / "config.json").write_text(config.to_json() + "\n")
    ckptr = ocp.StandardCheckpointer()
    ckptr.save(target / "params", params, force=True)
    ckptr.wait_until_finished()
    return model_id


def _to_numpy(tree):
    if isinstance(tree, dict):
        return {k: _to_numpy(v) for k, v in tree.items()}
    return np.asarray(tree, dtype=np.float32)


@functools.lru_cache(maxsize=4)
def load_config(model_id: str) -> CodecConfig:
    """The config of an installed checkpoint, read without JAX or the weights: enough for a
    file's layout when no slice of it runs the network (every tile at 0 iterations)."""
    folder = find(model_id)
    try:
        return CodecConfig.from_json((folder / "config.json").read_text())
    except (OSError, ValueError, KeyError) as e:
        raise CheckpointError(f"checkpoint {folder} is unreadable: {e}") from e


@functools.lru_cache(maxsize=4)
def load(model_id: str | None = None) -> Model:
    """Load (and cache) a checkpoint by id; the default one if None. Verifies its hash."""
    import jax
    import orbax.checkpoint as ocp

    from . import codec
    from .runtime import enable_compilation_cache

    enable_compilation_cache()
    model_id = model_id or default_model_id()
    folder = find(model_id)
    try:
        config = CodecConfig.from_json((folder / "config.json").read_text())
        abstract = jax.eval_shape(lambda: codec.init(config, jax.random.PRNGKey(0)))
        params = ocp.StandardCheckpointer().restore((folder / "params").absolute(), abstract)
    except (OSError, ValueError, KeyError) as e:
        raise CheckpointError(f"checkpoint {folder} is unreadable: {e}") from e
    params = _to_numpy(params)
    got = f"{config.name}-{content_hash(config, params)}"
    if got != model_id:
        raise CheckpointError(f"checkpoint {folder} does not match its id (content hash gives {got})")
    return Model(model_id, config, params, folder)
