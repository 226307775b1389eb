"""``cli_report``: what the ``neurosparse report`` command runs.

``target`` is ``"path/to/file.py:build_fn"``. ``build_fn()`` returns a model, a
``(model, example_input)`` pair, or a dict with ``"model"`` and optionally ``"input"``
and ``"layout"``. ``data`` chooses the input:

* a ``.pt``/``.pth`` (torch.save of a tensor) or ``.npy``/``.npz`` file: that tensor;
* ``"example"`` (or ``""``): the example input returned by ``build_fn``;
* ``"synthetic:T,B,d1,d2,...[@rate]"``: Bernoulli spikes of that shape (rate 0.1 by default);
* any other name is looked up with ``neurosparse.data.load_sample(name)`` when the data
  package provides it (e.g. ``"nmnist-sample"``).

The input is read as ``[T, B, ...]`` (layout ``"TB"``) unless the build function names
another layout; an input of fewer than 3 dimensions without a layout is refused.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import EventFileNotFoundError, InputValueError, ParameterError
from .meter import Meter
from .report import Report


def load_target(target: str) -> Any:
    """Import ``file.py:function`` and return the function."""
    path_s, sep, fn_name = target.rpartition(":")
    if not sep or not path_s or not fn_name:
        raise ParameterError(
            f"target must look like 'path/to/model.py:build_fn', got {target!r}"
        )
    path = Path(path_s)
    if not path.is_file():
        raise EventFileNotFoundError(f"target file {path_s!r} does not exist")
    mod_name = f"_neurosparse_target_{abs(hash(str(path.resolve())))}"
    spec = importlib.util.spec_from_file_location(mod_name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[mod_name] = module
    spec.loader.exec_module(module)
    fn = getattr(module, fn_name, None)
    if not callable(fn):
        raise ParameterError(f"{path_s!r} has no callable named {fn_name!r}")
    return fn


def _unpack(built: Any) -> tuple[torch.nn.Module, torch.Tensor | None, str | None]:
    """(model, example input, layout or None when the build function named none)."""
    if isinstance(built, dict):
        return built["model"], built.get("input"), built.get("layout")
    if isinstance(built, (tuple, list)):
        return built[0], (built[1] if len(built) > 1 else None), (
            built[2] if len(built) > 2 else None)
    return built, None, None


def resolve_data(data: str | None, example: torch.Tensor | None) -> torch.Tensor:
    """Turn the ``data`` argument into an input tensor (see module docstring)."""
    if not data or data == "example":
        if example is None:
            raise InputValueError(
                "no data given and the build function returned no example input; pass "
                "--data PATH.pt|PATH.npy|synthetic:T,B,...[@rate] or return (model, x)"
            )
        return example
    if data.startswith("synthetic:"):
        spec, _, rate_s = data[len("synthetic:"):].partition("@")
        try:
            shape = [int(s) for s in spec.split(",")]
            rate = float(rate_s) if rate_s else 0.1
        except ValueError as exc:
            raise InputValueError(
                f"data {data!r}: expected 'synthetic:T,B,d1,...[@rate]'") from exc
        gen = torch.Generator().manual_seed(0)
        return (torch.rand(shape, generator=gen) < rate).float()
    path = Path(data)
    if path.suffix in (".pt", ".pth", ".npy", ".npz"):
        if not path.is_file():
            raise EventFileNotFoundError(f"data file {data!r} does not exist")
        if path.suffix in (".pt", ".pth"):
            obj = torch.load(path, map_location="cpu", weights_only=True)
        else:
            arr = np.load(path)
            obj = arr[arr.files[0]] if hasattr(arr, "files") else arr
        return torch.as_tensor(np.asarray(obj) if not isinstance(obj, torch.Tensor) else obj
                               ).float()
    from .. import data as ns_data

    loader = getattr(ns_data, "load_sample", None)
    if loader is None:
        raise InputValueError(
            f"unknown data {data!r}: use a .pt/.npy file, 'example', or "
            "'synthetic:T,B,...[@rate]' (named samples need neurosparse.data.load_sample)"
        )
    return torch.as_tensor(loader(data)).float()


def cli_report(target: str, data: str | None, hardware: list[str] | None) -> Report:
    """Build the model of ``target``, run it on ``data`` under a Meter, return the report."""
    model, example, layout = _unpack(load_target(target)())
    x = resolve_data(data, example)
    if layout is None:
        if x.dim() < 3:
            # "TB" would read a [B, features] batch as B steps of `features` samples and
            # divide every per-inference figure by the feature count, silently
            raise ParameterError(
                f"input of shape {tuple(x.shape)} has no [T, B, ...] layout (the default "
                "of `neurosparse report`); for a batch of one-step samples return "
                "{'model': ..., 'input': ..., 'layout': 'B'} from the build function, "
                "or give the input as [T, B, features]")
        layout = "TB"
    model.eval()
    with Meter(model, layout=layout) as meter, torch.no_grad():
        try:
            model(x)
        except Exception as exc:  # one line for the CLI; --debug shows the chained cause
            source = (f"--data {data!r}" if data and data != "example"
                      else "the build function's example input")
            why = " ".join(f"{type(exc).__name__}: {exc}".split())
            raise InputValueError(
                f"the model failed on input of shape {tuple(x.shape)} (from {source}): "
                f"{why}; the data's shape must match the model's input (with layout "
                f"{layout!r}), so pick --data of that shape or adapt the model"
            ) from exc
    return meter.report(hardware=hardware or None)
