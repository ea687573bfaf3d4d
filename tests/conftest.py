"""Shared fixtures: a tiny randomly initialised model installed in a temporary checkpoint
folder (fast, for unit tests), and paths of real images shipped by test dependencies."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

# One XLA compilation cache for the whole test session (shared with the subprocesses the
# plugin tests start), never the user's own cache folder.
if "MEDCODEC_XLA_CACHE" not in os.environ:
    import tempfile

    os.environ["MEDCODEC_XLA_CACHE"] = tempfile.mkdtemp(prefix="medcodec-xla-")


@pytest.fixture(scope="session")
def tiny_checkpoints(tmp_path_factory) -> Path:
    """A checkpoints folder holding one random-weight model of the 'test' config, named as
    the default there (so code paths without a model argument use it too)."""
    import jax

    from medcodec.model import checkpoint
    from medcodec.model import codec
    from medcodec.model.config import TEST_TINY

    folder = tmp_path_factory.mktemp("checkpoints")
    params = codec.init(TEST_TINY, jax.random.PRNGKey(42))
    model_id = checkpoint.save(folder, TEST_TINY, params)
    (folder / "TINY_ID").write_text(model_id)
    (folder / "DEFAULT").write_text(model_id)  # with MEDCODEC_CHECKPOINTS set, it is the default
    return folder


@pytest.fixture
def tiny_model_id(tiny_checkpoints, monkeypatch) -> str:
    """Make the tiny model findable (MEDCODEC_CHECKPOINTS) and return its id."""
    monkeypatch.setenv("MEDCODEC_CHECKPOINTS", str(tiny_checkpoints))
    return (tiny_checkpoints / "TINY_ID").read_text()


def _package_file(package: str, member: str) -> Path:
    import importlib.util

    spec = importlib.util.find_spec(package)
    return Path(list(spec.submodule_search_locations)[0]) / member


@pytest.fixture(scope="session")
def ct_small_path() -> Path:
    """Real CT slice (128x128, pydicom test file)."""
    return _package_file("pydicom", "data/test_files/CT_small.dcm")


@pytest.fixture
def mr_series_dir(tmp_path) -> Path:
    """A real two-slice MR DICOM series (nibabel's nicom test data) in its own folder."""
    import shutil

    d = tmp_path / "mr_series"
    d.mkdir()
    for name in ("0.dcm", "1.dcm"):
        shutil.copy(_package_file("nibabel", f"nicom/tests/data/{name}"), d / name)
    return d


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)


def pytest_configure(config):
    # keep XLA from grabbing every core twice over when tests run beside other work
    os.environ.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=true")
