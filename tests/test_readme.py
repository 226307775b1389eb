"""The README as a new user follows it: its runnable snippets run, CI runs its commands,
the demo needs only the runtime dependencies, and the licence it names is there."""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: the runtime dependency tomli
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
MARK = "<!-- runnable"


def fenced(lang: str, after: str | None = None) -> list[str]:
    """Bodies of the ```lang blocks (only those right after a line starting ``after``)."""
    lead = rf"{re.escape(after)}[^\n]*\n" if after else ""
    return re.findall(rf"{lead}```{lang}\n(.*?)```", README, flags=re.S)


RUNNABLE = fenced("python", MARK)


def test_some_snippets_are_marked_runnable():
    assert len(RUNNABLE) >= 2
    assert README.count(MARK) == len(RUNNABLE)  # every mark sits right above a block


@pytest.mark.parametrize("code", RUNNABLE, ids=lambda c: c.splitlines()[0][:40])
def test_runnable_snippet_runs(code):
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                          text=True, timeout=300)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]


def test_clone_comes_before_install():
    shell = fenced("bash")
    clone = next(i for i, b in enumerate(shell) if b.startswith("git clone"))
    first_install = next(i for i, b in enumerate(shell) if "pip install" in b)
    assert clone < first_install


def test_user_and_developer_paths():
    installs = [b for b in fenced("bash") if "pip install" in b]
    user, dev = installs[0].splitlines(), installs[1].splitlines()
    assert user[0].endswith('"torchvision==0.29.1" .')  # runtime dependencies only
    assert user[1] == ".venv/bin/neurosparse demo" and len(user) == 2
    assert '-e ".[dev]"' in dev[0] and dev[1:] == [".venv/bin/neurosparse demo",
                                                    ".venv/bin/python -m pytest"]


def test_ci_runs_the_readme_developer_commands():
    dev = next(b for b in fenced("bash") if '-e ".[dev]"' in b).splitlines()
    ci = [line for line in (ROOT / ".ci" / "run").read_text().splitlines()
          if line and not line.startswith(("#", "set ", "cd ", "export ", "rm "))]
    assert ci == [dev[0], dev[1] + " --no-progress", dev[2]]


def test_licence_file_matches_pyproject():
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert meta["license"]["text"] == "MIT"
    assert (ROOT / "LICENSE").read_text().startswith("MIT License")


def test_demo_runs_without_the_dev_extra():
    """The demo with every package outside the runtime dependencies made unimportable
    (what a `pip install .` without extras has)."""
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = {re.split(r"[<>=\[; ]", d)[0] for d in
              meta["optional-dependencies"]["dev"] + meta["optional-dependencies"]["interop"]}
    extras -= {"neurosparse"}
    blocked = sorted({e.replace("-", "_").lower() for e in extras} | {"sklearn", "mkdocs_gen"})
    code = textwrap.dedent(f"""
        import sys
        for name in {blocked!r}:
            sys.modules[name] = None  # importing it raises ImportError, as if absent
        from neurosparse.cli import main
        sys.exit(main(["demo", "--epochs", "1", "--n-train", "32", "--no-progress"]))
    """)
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                          text=True, timeout=600)  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    assert "test accuracy" in proc.stdout
