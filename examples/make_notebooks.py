"""Write executed Jupyter notebooks of the example scripts into ``examples/notebooks/``.

    python examples/make_notebooks.py [--quick] [--timeout 900] [NN_name.py ...]

This one command regenerates every notebook and its outputs. Each ``NN_*.py`` (Jupytext
percent format) becomes a notebook: a first cell puts ``examples/`` on ``sys.path``
(found from wherever the notebook is opened: ``examples/notebooks/``, ``examples/`` or
the repository root) so the scripts' shared helpers (``_common.py``) import; the line
that forces matplotlib's Agg backend is dropped so figures show inline; then the
notebook runs in a fresh kernel started in ``examples/notebooks/``, where users open it,
and is saved with its outputs. ``--quick`` runs the small settings
(``NEUROSPARSE_QUICK=1``) and says so in the notebook. Needs ``jupytext``, ``nbclient``
and ``ipykernel`` (the ``[dev]`` extra).
"""

from __future__ import annotations

import argparse
import os
import re
from pathlib import Path

HERE = Path(__file__).resolve().parent
AGG = re.compile(r"^matplotlib\.use\(\"Agg\"\).*\n", flags=re.M)
SETUP_TAG = "find-examples"
SETUP = """\
# Make examples/_common.py importable wherever this notebook is opened
# (examples/notebooks/, examples/ or the repository root).
import sys
from pathlib import Path

for _d in [Path.cwd(), *Path.cwd().parents]:
    _examples = _d if (_d / "_common.py").is_file() else _d / "examples"
    if (_examples / "_common.py").is_file():
        sys.path.insert(0, str(_examples))
        break
else:
    raise FileNotFoundError("open this notebook inside the neurosparse repository")"""
QUICK_NOTE = ("*Outputs below come from the small settings (`NEUROSPARSE_QUICK=1`, as "
              "`--quick`); unset it for the full run.*")


def to_notebook(script: Path, quick: bool = False):
    """The script as an (unexecuted) notebook, figures inline, with the setup cell."""
    import jupytext
    import nbformat

    nb = jupytext.reads(script.read_text(), fmt="py:percent")
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.source = AGG.sub("", cell.source).replace("import matplotlib\n\n", "")
    first = next(i for i, c in enumerate(nb.cells) if c.cell_type == "code")
    setup = nbformat.v4.new_code_cell(SETUP, metadata={"tags": [SETUP_TAG]})
    nb.cells.insert(first, setup)
    if quick:
        nb.cells.insert(first, nbformat.v4.new_markdown_cell(QUICK_NOTE))
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    return nb


def execute(nb, cwd: Path, timeout: int, env: dict[str, str] | None = None):
    """Run every cell in a fresh kernel started in ``cwd``; return the executed notebook."""
    from nbclient import NotebookClient

    old = {k: os.environ.get(k) for k in (env or {})}
    os.environ.update(env or {})  # the kernel inherits this process's environment
    try:
        NotebookClient(nb, timeout=timeout, kernel_name="python3",
                       resources={"metadata": {"path": str(cwd)}}).execute()
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    return nb


def main() -> None:
    import nbformat

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("scripts", nargs="*", help="default: every examples/NN_*.py")
    p.add_argument("--quick", action="store_true")
    p.add_argument("--timeout", type=int, default=900, help="seconds per cell")
    p.add_argument("--out", type=Path, default=HERE / "notebooks")
    args = p.parse_args()
    scripts = [HERE / s for s in args.scripts] or sorted(HERE.glob("[0-9][0-9]_*.py"))
    args.out.mkdir(parents=True, exist_ok=True)
    env = {"NEUROSPARSE_QUICK": "1"} if args.quick else {}
    env["MPLBACKEND"] = "module://matplotlib_inline.backend_inline"
    env["PYTHONWARNINGS"] = "ignore"  # library deprecation notes are not the example's output
    for script in scripts:
        nb = execute(to_notebook(script, args.quick), args.out, args.timeout, env)
        for i, cell in enumerate(nb.cells):  # timestamps and random ids would change
            cell.metadata.pop("execution", None)  # every file on every run
            cell["id"] = f"cell-{i:02d}"
        path = args.out / f"{script.stem}.ipynb"
        nbformat.write(nb, path)
        print(f"{path} ({path.stat().st_size / 1024:.0f} KiB)")


if __name__ == "__main__":
    main()
