"""``neurosparse._env.getenv``: the same answers as ``os.environ.get``."""

from __future__ import annotations

import os
from unittest import mock

import pytest

from neurosparse import _env
from neurosparse.ops import registry

NAME = "NEUROSPARSE_TEST_ENV_READ"


@pytest.mark.parametrize("value", ["1", "", "torch", "  Numba ", "é-ü", "a=b"])
def test_getenv_follows_every_write_through_os_environ(monkeypatch, value):
    monkeypatch.delenv(NAME, raising=False)
    assert _env.getenv(NAME) is None and _env.getenv(NAME, "d") == "d"
    monkeypatch.setenv(NAME, value)
    assert _env.getenv(NAME, "d") == os.environ.get(NAME) == value
    os.environ[NAME] = value + "x"
    assert _env.getenv(NAME) == value + "x"
    del os.environ[NAME]
    assert _env.getenv(NAME, "gone") == "gone"
    with mock.patch.dict(os.environ, {NAME: "patched"}):
        assert _env.getenv(NAME) == "patched"
    assert _env.getenv(NAME) is None


def test_getenv_reads_a_replaced_environ(monkeypatch):
    # a test that swaps os.environ for a plain dict must be answered from that dict
    monkeypatch.setattr(os, "environ", {NAME: "swapped"})
    assert _env.getenv(NAME) == "swapped"
    assert _env.getenv(NAME + "_MISSING", "d") == "d"


def test_the_kernel_switch_is_read_on_every_call(monkeypatch):
    monkeypatch.setenv("NEUROSPARSE_KERNELS", "torch")
    assert registry.kernel_mode() == "torch"
    monkeypatch.setenv("NEUROSPARSE_KERNELS", " NUMBA ")
    assert registry.kernel_mode() == "numba"
    monkeypatch.delenv("NEUROSPARSE_KERNELS")
    assert registry.kernel_mode() == "auto"
    monkeypatch.setenv("NEUROSPARSE_KERNELS", "fast")
    with pytest.raises(ValueError, match="NEUROSPARSE_KERNELS='fast'"):
        registry.kernel_mode()
