"""The architecture as a test: the layers contract in pyproject.toml (lint-imports) and no
import cycle anywhere in medcodec/ or plugins/ (checked on the import graph itself)."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_layers_contract_is_kept():
    exe = shutil.which("lint-imports") or str(Path(sys.executable).with_name("lint-imports"))
    done = subprocess.run([exe], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "3 kept, 0 broken" in done.stdout


def _graph():
    grimp = pytest.importorskip("grimp")  # installed with import-linter
    return grimp.build_graph("medcodec", "medcodec_plugins")


def test_no_import_cycles():
    """Module-level cycles of any length (lazy imports inside functions count too)."""
    graph = _graph()
    modules = sorted(graph.modules)
    succ = {m: sorted(graph.find_modules_directly_imported_by(m)) for m in modules}
    index, low, stack, on_stack, cycles, counter = {}, {}, [], set(), [], [0]

    def strongconnect(v):  # Tarjan's algorithm, iterative enough for this small graph
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in succ[v]:
            if w not in index:
                strongconnect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            # a package importing its own submodules (its __init__ re-exporting them) is no cycle
            real = [m for m in component if not any(o != m and o.startswith(m + ".") for o in component)]
            if len(real) > 1:
                cycles.append(sorted(component))

    for m in modules:
        if m not in index:
            strongconnect(m)
    assert not cycles, f"import cycles: {cycles}"


def test_every_package_is_shipped():
    """pyproject.toml lists packages by hand: a new subpackage missing there would be left
    out of a regular (non-editable) install."""
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+

    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {".".join(p.relative_to(ROOT).parent.parts) for p in (ROOT / "medcodec").rglob("__init__.py")}
    assert found <= listed, f"not in pyproject.toml's packages: {sorted(found - listed)}"
