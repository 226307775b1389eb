"""Write executed Jupyter notebooks of the example scripts into ``examples/notebooks/``.

    python examples/make_notebooks.py [--quick] [--timeout 900] [NN_name.py ...]

Each ``NN_*.py`` (Jupytext percent format) becomes a notebook; the line that forces
matplotlib's Agg backend is dropped so figures show inline; then the notebook runs in a
fresh kernel started in ``examples/`` and is saved with its outputs. ``--quick`` runs
the small settings (``NEUROSPARSE_QUICK=1``). Needs ``jupytext``, ``nbclient`` and
``ipykernel``.
"""

from __future__ import annotations

import argparse
import os
import re
from pathlib import Path

HERE = Path(__file__).resolve().parent
AGG = re.compile(r"^matplotlib\.use\(\"Agg\"\).*\n", flags=re.M)


def to_notebook(script: Path):
    """The script as an (unexecuted) notebook, figures inline."""
    import jupytext

    nb = jupytext.reads(script.read_text(), fmt="py:percent")
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.source = AGG.sub("", cell.source).replace("import matplotlib\n\n", "")
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
        nb = execute(to_notebook(script), HERE, args.timeout, env)
        for cell in nb.cells:  # timestamps would change every file on every run
            cell.metadata.pop("execution", None)
        path = args.out / f"{script.stem}.ipynb"
        nbformat.write(nb, path)
        print(f"{path} ({path.stat().st_size / 1024:.0f} KiB)")


if __name__ == "__main__":
    main()
