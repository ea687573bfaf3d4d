"""The kernels package: numba's set-up without scipy.linalg (its start-up cost)."""

import subprocess
import sys

_PROBE = """
import sys
from medcodec.coding.kernels import rangecoder
model = rangecoder.new_model(3)  # the first call builds numba's CPU target (from the cache or not)
print(int(model[2]), 'scipy.linalg' in sys.modules)
import numba, numpy as np
dot = numba.njit(lambda a, b: np.dot(a, b))  # BLAS still there for code that asks for it
print(float(dot(np.arange(3.0), np.ones(3))), 'scipy.linalg' in sys.modules)
"""


def test_kernels_load_without_scipy_linalg_and_blas_still_works(tmp_path):
    env = {"MEDCODEC_CACHE": str(tmp_path), "PATH": "/usr/bin:/bin"}
    out = subprocess.run([sys.executable, "-c", _PROBE], capture_output=True, text=True, env=env, check=True)
    assert out.stdout.split() == ["3", "False", "3.0", "True"]
