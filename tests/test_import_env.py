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
