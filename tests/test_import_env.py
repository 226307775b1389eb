"""What ``import neurosparse`` does to the process environment (``neurosparse/__init__.py``).

Each case runs in a fresh interpreter: the OpenMP wait policy is only worth setting
before torch has loaded libgomp, so the order of imports is what is tested.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _policy_after(imports: str, policy: str | None) -> str:
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    if policy is not None:
        env["OMP_WAIT_POLICY"] = policy
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    code = f"{imports}; import os; print(os.environ.get('OMP_WAIT_POLICY'))"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                         text=True, check=True, timeout=300)  # fmt: skip
    return out.stdout.strip().splitlines()[-1]


@pytest.mark.parametrize(
    ("imports", "policy", "expected"),
    [
        ("import neurosparse", None, "PASSIVE"),  # set before torch loads OpenMP
        ("import torch; import neurosparse", None, "None"),  # too late: left alone
        ("import neurosparse", "ACTIVE", "ACTIVE"),  # the user's choice wins
    ],
)
def test_omp_wait_policy_set_only_before_torch(imports: str, policy: str | None,
                                               expected: str) -> None:  # fmt: skip
    assert _policy_after(imports, policy) == expected


def test_kernels_import_from_a_source_checkout_without_an_editable_install() -> None:
    # `pip install .` then `python -m neurosparse.train` in the repository: the checkout's
    # package folder is found first and has no kernels/ (pyproject maps the top-level
    # folder in at build time). -S skips the .pth files, so no editable finder helps.
    import sysconfig

    code = (
        "import sys; sys.path[:0] = [sys.argv[1], sys.argv[2]]; "
        "import neurosparse, neurosparse.kernels.lif_cpu as k, torch; "
        "z, _ = neurosparse.LIF(0.9)(torch.full((3, 1, 2), 0.6)); "
        "print(k.__name__, k.__file__, int(z.sum()))"
    )
    out = subprocess.run([sys.executable, "-S", "-c", code, str(ROOT),
                          sysconfig.get_paths()["purelib"]],
                         capture_output=True, text=True, timeout=300)  # fmt: skip
    assert out.returncode == 0, out.stderr[-2000:]
    name, path, spikes = out.stdout.split()[-3:]
    assert name == "neurosparse.kernels.lif_cpu"
    assert Path(path) == ROOT / "kernels" / "lif_cpu.py"
    # membrane 0.6, 1.14 (spike), then 0.9 * 1.14 + 0.6 - 1 = 0.626 (delayed reset):
    # one spike for each of the two neurons
    assert int(spikes) == 2
