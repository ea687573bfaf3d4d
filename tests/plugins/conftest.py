"""Helpers for plugin tests: run code in a fresh interpreter with the tiny model."""

import os
import subprocess
import sys
import textwrap

import pytest


def run_py(code: str, env_extra: dict | None = None, cwd=None) -> str:
    env = dict(os.environ)
    env.update(env_extra or {})
    out = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                         env=env, cwd=cwd, timeout=300)
    if out.returncode != 0:
        raise AssertionError(f"subprocess failed ({out.returncode}):\n{out.stdout}\n{out.stderr}")
    return out.stdout


@pytest.fixture
def env(tiny_checkpoints):
    return {"MEDCODEC_CHECKPOINTS": str(tiny_checkpoints), "MEDCODEC_ITERATIONS": "2",
            "MEDCODEC_SITK_HOOK": "1"}
