"""The notebooks in ``examples/notebooks/``: in step with the scripts they are made from,
executed, and runnable from where a user opens them.

CI cost: every notebook is checked statically (code equals its script's, outputs present,
no errors); one (01, about 20 s) is executed from ``examples/notebooks/`` with the small
settings. The others' code runs in ``tests/test_examples.py`` as scripts.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
NOTEBOOKS = EXAMPLES / "notebooks"
SCRIPTS = sorted(EXAMPLES.glob("[0-9][0-9]_*.py"))

nbformat = pytest.importorskip("nbformat", reason="nbformat is in the [dev] extra")
pytest.importorskip("jupytext", reason="jupytext is in the [dev] extra")


def _make_notebooks():
    spec = importlib.util.spec_from_file_location("make_notebooks", EXAMPLES / "make_notebooks.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _code(nb) -> list[str]:
    return [c.source for c in nb.cells if c.cell_type == "code"]


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.stem)
def test_committed_notebook_matches_its_script_and_ran(script):
    path = NOTEBOOKS / f"{script.stem}.ipynb"
    assert path.is_file(), f"run: python examples/make_notebooks.py {script.name}"
    nb = nbformat.read(path, as_version=4)
    want = _make_notebooks().to_notebook(script)
    assert _code(nb) == _code(want), (
        f"{path.name} is stale: run python examples/make_notebooks.py {script.name}")
    setup = next(c for c in nb.cells if c.cell_type == "code")
    assert "find-examples" in setup.metadata.get("tags", [])
    for cell in nb.cells:
        if cell.cell_type == "code" and cell.source.strip():
            assert cell.execution_count is not None, "a cell was not executed"
            errors = [o for o in cell.outputs if o.output_type == "error"]
            assert not errors, errors[0].get("ename")
    outputs = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code"
                      for o in c.outputs)  # fmt: skip
    assert "summary:" in outputs, path.name  # the script ran to its end


@pytest.mark.parametrize("where", ["examples/notebooks", "examples", "."])
def test_setup_cell_finds_the_shared_helpers(where):
    code = _make_notebooks().SETUP + "\nimport _common\nprint(_common.HERE)"
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT / where, capture_output=True,
                          text=True, timeout=120)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert Path(proc.stdout.strip()) == EXAMPLES


def test_a_notebook_executes_from_its_own_folder(tmp_path):
    pytest.importorskip("nbclient", reason="nbclient is in the [dev] extra")
    pytest.importorskip("ipykernel", reason="ipykernel is in the [dev] extra")
    mk = _make_notebooks()
    nb = mk.to_notebook(EXAMPLES / "01_quickstart.py", quick=True)
    env = {"NEUROSPARSE_QUICK": "1", "NEUROSPARSE_EXAMPLES_OUT": str(tmp_path),
           "MPLBACKEND": "Agg", "PYTHONWARNINGS": "ignore",
           "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    nb = mk.execute(nb, NOTEBOOKS, timeout=600, env=env)
    outputs = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code"
                      for o in c.outputs)  # fmt: skip
    assert "summary:" in outputs
    assert (tmp_path / "01_quickstart" / "summary.json").is_file()


def test_notebook_runs_in_a_kernel(tmp_path):
    for mod, why in (("jupytext", "jupytext"), ("nbclient", "nbclient"),
                     ("ipykernel", "ipykernel")):
        pytest.importorskip(mod, reason=f"{why} is needed to execute notebooks")
    mk = _make_notebooks()
    nb = mk.execute(mk.to_notebook(EXAMPLES / "04_sequence_anomaly.py"), EXAMPLES, 600,
                    {"NEUROSPARSE_QUICK": "1", "NEUROSPARSE_EXAMPLES_OUT": str(tmp_path),
                     "MPLBACKEND": "module://matplotlib_inline.backend_inline"})
    images = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
              if "image/png" in o.get("data", {})]
    assert len(images) >= 2  # figures show inline (no forced Agg backend in the notebook)
    s = json.loads((tmp_path / "04_sequence_anomaly" / "summary.json").read_text())
    assert s["anomaly_per_learning_day"][-1] < 0.2
    assert all(p > s["last_day_max"] for p in s["peaks"].values())
