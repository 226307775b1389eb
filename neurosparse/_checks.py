"""Argument checks shared by every module; each raises a specific, explanatory error."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from ._env import getenv
from .errors import DeviceError, DTypeError, InputValueError, ParameterError, ShapeError


def check_float_tensor(name: str, x: object) -> torch.Tensor:
    """Require a floating-point torch tensor."""
    if not isinstance(x, torch.Tensor):
        raise DTypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if not x.is_floating_point():
        raise DTypeError(
            f"{name} must be a floating-point tensor, got dtype {x.dtype}; "
            f"convert it with {name}.float()"
        )
    return x


def check_rank(name: str, x: torch.Tensor, ranks: Sequence[int], layout: str) -> None:
    """Require ``x.dim()`` to be one of ``ranks``; ``layout`` names the expected axes."""
    if x.dim() not in ranks:
        r = sorted(ranks)
        span = (f"{r[0]} to {r[-1]}" if len(r) > 2 and r == list(range(r[0], r[-1] + 1))
                else " or ".join(map(str, r)))  # fmt: skip
        raise ShapeError(
            f"{name} must have {span} dimensions ({layout}), got shape {tuple(x.shape)}"
        )


def finite_checks_on_gpu() -> bool:
    """Whether :func:`check_finite` also inspects CUDA tensors
    (``NEUROSPARSE_CHECK_FINITE_GPU=1``; off by default)."""
    return getenv("NEUROSPARSE_CHECK_FINITE_GPU", "0") not in ("", "0")


def check_finite(name: str, x: torch.Tensor, allow_inf: bool = False) -> None:
    """Reject NaN or infinite values (they would silently poison every later step);
    ``allow_inf`` rejects NaN only (for ops that rank values, where ±inf is fine).

    A NaN or inf anywhere makes the sum non-finite, so one reduction (~10x cheaper than
    an elementwise ``isfinite`` on the CPU) clears the common case; only a non-finite sum
    (which may also be a finite overflow) takes the exact check.

    CUDA tensors are checked only with ``NEUROSPARSE_CHECK_FINITE_GPU=1``: reading the
    result on the host synchronises with the GPU on every call, so the GPU idles while
    Python prepares the next kernel, and ``torch.cuda.graphs`` cannot capture a call
    that synchronises.
    """
    if x.is_cuda and not finite_checks_on_gpu():
        return
    if not x.numel():
        return
    xd = x.detach()
    s = xd.sum()
    if x.is_cpu and xd.is_floating_point() and not torch.compiler.is_compiling():
        # read as a Python float: ``torch.isfinite`` of a 0-d tensor costs several µs of
        # host time per call (a streaming step's budget), ``.item()`` about one (not
        # under torch.compile, where Dynamo would break the graph on it)
        s = s.item()
    if allow_inf:  # a NaN sum: NaN, or +inf and -inf; only then the exact test
        if bool(s != s) and bool(torch.isnan(xd).any()):
            raise InputValueError(f"{name} contains NaN values")
    elif (not (math.isfinite(s) if type(s) is float else bool(torch.isfinite(s)))
            and not bool(torch.isfinite(xd).all())):  # fmt: skip
        raise InputValueError(f"{name} contains NaN or infinite values")


def check_same_device(name: str, x: torch.Tensor, ref: torch.Tensor, ref_name: str) -> None:
    if x.device != ref.device:
        raise DeviceError(
            f"{name} is on {x.device} but {ref_name} is on {ref.device}; move them to one device"
        )


def check_module_device(
    module: torch.nn.Module, x: torch.Tensor, where: str, dtype: bool = False
) -> None:
    """Refuse an input on another device than ``module``'s parameters and buffers.

    The one device check of every module (torch's own layers fail later, inside the op,
    with a message about the op; a module whose path has no such op would compute on
    the input's device). Modules without tensors accept any device. ``dtype=True``
    also requires the input's dtype to be that of the first parameter.
    """
    # the module's own tensors first, as ``parameters()`` yields them, without its
    # generator machinery (a per-step cost of a streaming neuron's host time)
    ref = _first_tensor(module._parameters)
    if ref is None and module._modules:
        ref = next(iter(module.parameters()), None)
    if ref is None:
        ref = _first_tensor(module._buffers)
    if ref is None and module._modules:
        ref = next(iter(module.buffers()), None)
    if ref is None:
        return
    # two CPU tensors share the one CPU device: no device objects to build and compare
    if not (ref.is_cpu and x.is_cpu) and ref.device != x.device:
        raise DeviceError(
            f"{where} is on {ref.device} but its input is on {x.device}; move the input with "
            f"x.to({str(ref.device)!r}) or the module with .to({str(x.device)!r})"
        )
    if dtype and ref.dtype != x.dtype:
        raise DTypeError(
            f"{where} is {ref.dtype} but its input is {x.dtype}; convert the input with "
            f"x.to({ref.dtype}) or the module with .to({x.dtype})"
        )


def _first_tensor(tensors: dict) -> torch.Tensor | None:
    """The first value of a module's ``_parameters`` / ``_buffers`` that is not None."""
    for t in tensors.values():
        if t is not None:
            return t
    return None


def unwrap(x: object) -> object:
    """The output of a module's input: a neuron's ``(spikes, state)`` gives its spikes.

    Every layer calls it first, so ``nn.Sequential(LIF(), EventLinear(...))`` needs no
    adapter (``neurosparse.Sequential`` unpacks the tuple itself).
    """
    if isinstance(x, tuple) and len(x) == 2 and isinstance(x[0], torch.Tensor):
        return x[0]
    return x


def check_range(
    name: str, value: float, lo: float | None = None, hi: float | None = None
) -> None:
    """Require ``lo <= value <= hi`` (elementwise for tensors); NaN is never in range
    (every comparison with it is false, so a plain test let it through)."""
    v = torch.as_tensor(value, dtype=torch.float64)
    if (bool(torch.isnan(v).any()) or (lo is not None and bool((v < lo).any()))
            or (hi is not None and bool((v > hi).any()))):  # fmt: skip
        lo_s = "-inf" if lo is None else repr(lo)
        hi_s = "inf" if hi is None else repr(hi)
        got = value if v.numel() == 1 else f"values in [{v.min().item()}, {v.max().item()}]"
        raise ParameterError(f"{name} must lie in [{lo_s}, {hi_s}], got {got}")


def check_finite_range(
    name: str, value: float, lo: float | None = None, hi: float | None = None
) -> None:
    """:func:`check_range` that also refuses ±inf (elementwise for tensors): for settings
    such as a threshold or a decay, where an infinite value does not fail later either
    (an infinite threshold never fires and its subtract reset is ``inf * 0 = NaN``)."""
    v = torch.as_tensor(value, dtype=torch.float64)
    if not bool(torch.isfinite(v).all()):
        got = value if v.numel() == 1 else f"{int((~torch.isfinite(v)).sum())} non-finite values"
        raise ParameterError(f"{name} must be a finite number, got {got}")
    check_range(name, value, lo, hi)


def check_choice(name: str, value: str, choices: Sequence[str]) -> str:
    if value not in choices:
        raise ParameterError(f"{name} must be one of {list(choices)}, got {value!r}")
    return value


def check_sequence(x: object, min_rank: int, layout: str) -> torch.Tensor:
    """A finite floating tensor ``[T, B, ...]`` of at least ``min_rank`` dimensions."""
    x = check_float_tensor("input", x)
    check_rank("input", x, tuple(range(min_rank, 9)), layout)
    if x.shape[0] == 0 or x.shape[1] == 0:
        raise ShapeError(f"input must have at least one time step and one sample, got shape "
                         f"{tuple(x.shape)}")  # fmt: skip
    return x


def check_state_tensor(name: str, s: object, shape: tuple[int, ...], like: torch.Tensor):
    """A state tensor of one step's ``shape``, on ``like``'s device and dtype."""
    s = check_float_tensor(name, s)
    if tuple(s.shape) != tuple(shape):
        raise ShapeError(
            f"{name} has shape {tuple(s.shape)} but this input needs {tuple(shape)}; pass the "
            f"state returned for an input of this batch size, or None to start from rest"
        )
    check_same_device(name, s, like, "the input")
    if s.dtype != like.dtype:
        raise DTypeError(f"{name} has dtype {s.dtype} but the input has dtype {like.dtype}")
    check_finite(name, s)
    return s
