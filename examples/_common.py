"""What the examples share: where the shared data is, command-line flags, a summary file.

Each example is a plain script in Jupytext's percent format (``# %%`` cells), so it runs
as ``python examples/NN_name.py [--quick]`` and opens as a notebook alike
(``make_notebooks.py`` writes executed ones into ``examples/notebooks/``, whose first
cell puts ``examples/`` on ``sys.path`` so that this module is found). In a notebook
there are no flags: set ``NEUROSPARSE_QUICK=1`` for the small settings,
``NEUROSPARSE_EXAMPLES_OUT`` for where figures go.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from neurosparse.data.fetch_recordings import data_dir

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
# the small real recordings (optional): $NEUROSPARSE_DATA_DIR, else ../shared/data/dvs
# beside the repository; `python -m neurosparse.data.fetch_recordings` downloads them
SHARED_DVS = data_dir()


def parse_args(name: str, doc: str, add=None) -> argparse.Namespace:
    """Flags common to every example (``--quick``, ``--out``, ``--seed``) plus ``add``'s.

    Unknown arguments are ignored so the same code runs inside a Jupyter kernel.
    """
    p = argparse.ArgumentParser(description=doc.strip().splitlines()[0])
    p.add_argument("--quick", action="store_true",
                   default=os.environ.get("NEUROSPARSE_QUICK", "") not in ("", "0"),
                   help="small settings for a smoke run (tests use this)")
    base = Path(os.environ.get("NEUROSPARSE_EXAMPLES_OUT", HERE / "out"))
    p.add_argument("--out", type=Path, default=base / name,
                   help="folder for figures and reports (default: examples/out/<name>, "
                        "or $NEUROSPARSE_EXAMPLES_OUT/<name>)")
    p.add_argument("--seed", type=int, default=0)
    if add is not None:
        add(p)
    args, _ = p.parse_known_args(sys.argv[1:] if "ipykernel" not in sys.modules else [])
    args.out.mkdir(parents=True, exist_ok=True)
    if args.out.resolve().is_relative_to(Path.cwd()):  # shorter paths in what is printed
        args.out = args.out.resolve().relative_to(Path.cwd())
    return args


def recording_flags(p: argparse.ArgumentParser) -> None:
    """``--file`` (a recording to read), ``--sensor-size`` (for a file that states none)
    and ``--dt-us`` (the time bin), for the examples that read one DVS recording."""
    p.add_argument("--file", type=Path, default=None, help="an event recording to read")
    p.add_argument("--sensor-size", type=int, nargs=2, default=None, metavar=("W", "H"),
                   help="the sensor's width and height, for a --file that states none "
                        "(N-MNIST .bin: 34 34; many .dat files)")
    p.add_argument("--dt-us", type=int, default=1000, help="time bin of the frames (µs)")


def event_linear_class():
    """``ns.EventLinear`` where the installed neurosparse has it, else ``nn.Linear``."""
    import neurosparse as ns

    cls = getattr(ns, "EventLinear", None)
    if cls is None:
        try:
            from neurosparse.layers import EventLinear as cls
        except ImportError:
            from torch.nn import Linear as cls
    return cls


def write_summary(out: Path, **facts) -> None:
    """Write ``summary.json`` in ``out``: what the example measured (tests read it)."""
    path = out / "summary.json"
    path.write_text(json.dumps(facts, indent=2, default=str))
    print(f"summary: {path}")
