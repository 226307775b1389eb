"""NIR (Neuromorphic Intermediate Representation) export and import.

Scope: sequential models -- a chain of Linear / Conv2d / Flatten layers and neurons --
which is what hardware toolchains consume today. Continuous-time NIR neurons map onto
our discrete steps with a step ``dt`` the way snnTorch's exporter does it:

- ``LIF`` (decay form): ``tau = dt / (1 - beta)``, ``r = tau / dt`` (input gain 1),
  ``v_leak = 0``; ``IF``: ``nir.IF(r=1, v_threshold)``;
- ``LIF`` with a synaptic current: ``nir.CubaLIF`` with ``tau_syn = dt / (1 - alpha)``,
  ``tau_mem = dt / (1 - beta)``, ``r = tau_mem / dt``, ``w_in = tau_syn / dt``;
- ``CubaLIF`` (Norse's Euler form): ``nir.CubaLIF`` with ``tau_syn = 1 / tau_syn_inv``,
  ``tau_mem = 1 / tau_mem_inv``, ``r = 1``, ``w_in = tau_syn / dt``.

NIR does not describe our reset timing, reset mode or surrogate; we write them into each
node's ``metadata["neurosparse"]`` so an export -> import round trip is exact. A graph
from another tool is read with NIR's own semantics (reset to ``v_reset`` in the same
step), as snnTorch's importer does.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ..errors import ParameterError
from ..neurons import IF, LIF, CubaLIF, SpikingNeuron
from ..neurons import surrogate as sg
from ..sequential import Sequential
from ._walk import PerStep

_KEY = "neurosparse"


def _check_dt(dt) -> float:
    """A step length in seconds must be a finite number > 0 (it divides every tau)."""
    try:
        value = float(dt)
    except (TypeError, ValueError):
        raise ParameterError(f"dt must be a number of seconds > 0, got {dt!r}") from None
    if not np.isfinite(value) or value <= 0:
        raise ParameterError(f"dt must be a finite number of seconds > 0, got {dt!r}")
    return value


def _np(t) -> np.ndarray:
    # at least 1-d: nir.write stores every parameter as an HDF5 dataset, and h5py cannot
    # chunk scalar datasets
    return np.atleast_1d(np.asarray(torch.as_tensor(t).detach().cpu().numpy(), dtype=np.float32))


def _meta(neuron: SpikingNeuron, dt: float) -> dict:
    s = neuron.spec
    return {_KEY: {"class": type(neuron).__name__, "reset": s.reset, "reset_delay": s.reset_delay,
                   "surrogate": type(s.surrogate).__name__, "slope": s.surrogate.slope,
                   "dt": dt, "refractory": s.refractory}}  # fmt: skip


def _export_neuron(m: SpikingNeuron, dt: float, feat: tuple[int, ...] | None):
    import nir

    meta = _meta(m, dt)
    # NIR wants every parameter array of a node in one shape: the layer's, when known
    params = [torch.as_tensor(q) for q in m.params()]
    if feat is not None:
        params = [q.expand(feat) for q in params]
    p = type(m.params())(*torch.broadcast_tensors(*params))
    th = _np(p.threshold)
    if isinstance(m, CubaLIF):
        tau_syn = 1.0 / (-_np(p.alpha) / dt)
        tau_mem = 1.0 / (_np(p.gain) / dt)
        return nir.CubaLIF(tau_syn=tau_syn, tau_mem=tau_mem, r=np.ones_like(tau_mem),
                           v_leak=_np(p.leak), v_threshold=th, v_reset=_np(p.v_reset),
                           w_in=tau_syn / dt, metadata=meta)  # fmt: skip
    if m.spec.adaptive:
        raise ParameterError("NIR has no adaptive-threshold neuron; ALIF cannot be exported")
    beta = _np(p.beta)
    if isinstance(m, IF):
        return nir.IF(r=np.ones_like(th), v_threshold=th, metadata=meta)
    tau_mem = dt / (1.0 - beta)
    if m.spec.synaptic:
        tau_syn = dt / (1.0 - _np(p.alpha))
        return nir.CubaLIF(tau_syn=tau_syn, tau_mem=tau_mem, r=tau_mem / dt,
                           v_leak=np.zeros_like(tau_mem), v_threshold=th,
                           v_reset=np.zeros_like(th), w_in=tau_syn / dt, metadata=meta)  # fmt: skip
    return nir.LIF(tau=tau_mem, r=tau_mem / dt, v_leak=np.zeros_like(tau_mem), v_threshold=th,
                   v_reset=np.zeros_like(th), metadata=meta)  # fmt: skip


def _export_layer(m: nn.Module, dt: float, feat: tuple[int, ...] | None):
    import nir

    if isinstance(m, PerStep):
        m = m.module
    if getattr(m, "is_spiking_neuron", False):
        return _export_neuron(m, dt, feat)
    if isinstance(m, nn.Linear):
        if m.bias is None:
            return nir.Linear(weight=_np(m.weight))
        return nir.Affine(weight=_np(m.weight), bias=_np(m.bias))
    if isinstance(m, nn.Conv2d):
        bias = _np(m.bias) if m.bias is not None else np.zeros(m.out_channels, np.float32)
        return nir.Conv2d(input_shape=None, weight=_np(m.weight), stride=m.stride,
                          padding=m.padding, dilation=m.dilation, groups=m.groups,
                          bias=bias)  # fmt: skip
    if isinstance(m, nn.Flatten):
        if m.start_dim < 2:
            raise ParameterError("Flatten over [T, B, ...] must start at dim >= 2 to export")
        end = m.end_dim - 2 if m.end_dim >= 0 else m.end_dim
        shape = np.array(feat if feat is not None else [])
        return nir.Flatten(input_type={"input": shape}, start_dim=m.start_dim - 2, end_dim=end)
    raise ParameterError(f"cannot export {type(m).__name__} to NIR")


def _layer_shapes(layers: list[nn.Module], sample_shape: tuple[int, ...]) -> list[tuple]:
    """Per-sample input shape of every layer and the output shape (one zero step)."""
    x = torch.zeros(1, 1, *sample_shape)
    shapes = []
    with torch.no_grad():
        for m in layers:
            shapes.append(tuple(x.shape[2:]))
            x = m(x)
            x = x[0] if isinstance(x, tuple) else x
    return [*shapes, tuple(x.shape[2:])]


def _infer_sample_shape(layers: list[nn.Module]) -> tuple[int, ...]:
    """The per-sample input shape when the first layer fixes it (Linear: its
    ``in_features``); otherwise an error that says to pass ``sample_shape``."""
    first = layers[0] if layers else None
    first = first.module if isinstance(first, PerStep) else first
    if isinstance(first, nn.Linear):
        return (first.in_features,)
    what = type(first).__name__ if first is not None else "an empty model"
    hint = " (C, H, W), e.g. (2, 34, 34)" if isinstance(first, nn.Conv2d) else ""
    raise ParameterError(
        f"to_nir cannot infer the input shape of a model that starts with {what}: pass "
        f"sample_shape=<one sample of one step>{hint}; NIR records every node's shape and "
        "nir.read checks them"
    )


def to_nir(model: nn.Module, dt: float = 1e-4, sample_shape: tuple[int, ...] | None = None):
    """Export a sequential model (``ns.Sequential`` / ``nn.Sequential`` of supported
    layers) as a ``nir.NIRGraph`` chain ``input -> 0 -> 1 -> ... -> output``.

    Parameters
    ----------
    model : nn.Module
        The model, applied to ``[T, B, ...]``.
    dt : float
        The length of one of our steps in seconds (1e-4 is snnTorch's convention).
    sample_shape : tuple of int, optional
        One sample of one step, e.g. ``(2, 34, 34)``. It fills in every node's input and
        output types, which ``nir.write`` / ``nir.read`` and hardware toolchains check.
        Inferred when the first layer is a ``Linear`` (``(in_features,)``); any other
        first layer raises :class:`~neurosparse.errors.ParameterError` asking for it.

    Returns
    -------
    nir.NIRGraph
        A type-checked graph that ``nir.write`` and ``nir.read`` round-trip.
    """
    import nir

    dt = _check_dt(dt)
    layers = list(model.children()) if isinstance(model, nn.Sequential) else [model]
    if sample_shape is None:
        sample_shape = _infer_sample_shape(layers)
    shapes = _layer_shapes(layers, tuple(sample_shape))
    nodes = {str(i): _export_layer(m, dt, shapes[i]) for i, m in enumerate(layers)}
    names = ["input", *nodes, "output"]
    nodes["input"] = nir.Input(input_type={"input": np.array(shapes[0])})
    nodes["output"] = nir.Output(output_type={"output": np.array(shapes[-1])})
    edges = list(zip(names[:-1], names[1:]))
    return nir.NIRGraph(nodes=nodes, edges=edges, type_check=True)


def _surrogate_of(meta: dict) -> sg.Surrogate:
    cls = getattr(sg, meta.get("surrogate", "ATan"), sg.ATan)
    return cls(meta.get("slope"))


def _one(x, what: str) -> float:
    u = np.unique(np.asarray(x, dtype=np.float64))
    if u.size != 1:
        raise ParameterError(f"{what} must be the same for all neurons to import, got {u[:4]}")
    return float(u[0])


def _decay(tau, dt: float) -> torch.Tensor:
    """Per-step decay ``1 - dt / tau`` (forward Euler, snnTorch's convention)."""
    d = 1.0 - dt / np.asarray(tau, np.float64)
    # tau = dt (no memory) comes back from float32 as 0 +- 1e-8: that is 0, not an error
    d = np.where(np.abs(d) < 1e-6, 0.0, d)
    return torch.as_tensor(d, dtype=torch.float32)


def _gain(w, dt: float, tau) -> np.ndarray:
    """Per-step input gain ``w * dt / tau``; 1 where both are infinite (no decay, as
    ``to_nir`` writes ``beta = 1`` / ``alpha = 1``)."""
    w, tau = np.asarray(w, np.float64), np.asarray(tau, np.float64)
    with np.errstate(invalid="ignore"):
        return np.where(np.isinf(w) & np.isinf(tau), 1.0, w * dt / tau)


def _import_neuron(node, dt: float) -> SpikingNeuron:
    import nir

    meta = (node.metadata or {}).get(_KEY, {})
    dt = _check_dt(meta.get("dt", dt))
    surrogate = _surrogate_of(meta) if meta else sg.ATan()
    own = {"reset": meta["reset"], "reset_delay": meta["reset_delay"]} if meta else {}
    v_reset = np.asarray(node.v_reset if node.v_reset is not None else 0.0)
    if not meta and not np.allclose(v_reset, 0.0):
        raise ParameterError("only v_reset = 0 is supported for NIR neurons from other tools")
    defaults = {"reset": "zero", "reset_delay": False}  # NIR: reset to v_reset at once
    kw = {**defaults, **own, "refractory": int(meta.get("refractory", 0))}
    th = torch.as_tensor(np.asarray(node.v_threshold, np.float32))
    if isinstance(node, nir.IF):
        if not np.allclose(node.r, 1.0):
            raise ParameterError("nir.IF with r != 1 is not supported")
        return IF(th, surrogate=surrogate, **kw)
    if isinstance(node, nir.LIF):
        if not np.allclose(node.v_leak, 0.0) or not np.allclose(_gain(node.r, dt, node.tau), 1.0):
            raise ParameterError(
                "nir.LIF needs v_leak = 0 and r * dt / tau = 1 (input gain 1) to import; "
                f"got dt={dt}: pass the dt the graph was made with"
            )
        return LIF(_decay(node.tau, dt), th, surrogate=surrogate, **kw)
    if isinstance(node, nir.CubaLIF):
        r = np.asarray(node.r, np.float64)
        # tau_syn dI/dt = -I + w_in S: our current takes each step's input with gain 1
        if not np.allclose(_gain(node.w_in, dt, node.tau_syn), 1.0):
            raise ParameterError(
                "nir.CubaLIF needs w_in * dt / tau_syn = 1 (input gain 1) to import; "
                f"got dt={dt}: pass the dt the graph was made with, or fold w_in into the "
                "preceding weights"
            )
        if meta.get("class") == "CubaLIF" or (not meta and np.allclose(r, 1.0)):
            return CubaLIF(1.0 / _one(node.tau_syn, "tau_syn"), 1.0 / _one(node.tau_mem, "tau_mem"),
                           _one(node.v_leak, "v_leak"), _one(node.v_threshold, "v_threshold"),
                           _one(v_reset, "v_reset"), dt, surrogate if meta else sg.SuperSpike())
        if not np.allclose(_gain(r, dt, node.tau_mem), 1.0):
            raise ParameterError("nir.CubaLIF needs r = 1 (Euler form) or r = tau_mem / dt")
        if not np.allclose(node.v_leak, 0.0):
            raise ParameterError("nir.CubaLIF with r = tau_mem / dt needs v_leak = 0 to import")
        return LIF(_decay(node.tau_mem, dt), th, surrogate=surrogate,
                   alpha=_decay(node.tau_syn, dt), **kw)  # fmt: skip
    raise AssertionError(type(node))


def _import_layer(node, dt: float) -> nn.Module:
    import nir

    if isinstance(node, (nir.LIF, nir.CubaLIF, nir.IF)):
        return _import_neuron(node, dt)
    if isinstance(node, (nir.Affine, nir.Linear)):
        w = torch.as_tensor(np.asarray(node.weight, np.float32))
        has_bias = isinstance(node, nir.Affine)
        m = nn.Linear(w.shape[1], w.shape[0], bias=has_bias)
        with torch.no_grad():
            m.weight.copy_(w)
            if has_bias:
                m.bias.copy_(torch.as_tensor(np.asarray(node.bias, np.float32)))
        return m
    if isinstance(node, nir.Conv2d):
        w = torch.as_tensor(np.asarray(node.weight, np.float32))
        m = nn.Conv2d(w.shape[1] * node.groups, w.shape[0], tuple(w.shape[2:]), node.stride,
                      node.padding, node.dilation, node.groups)  # fmt: skip
        with torch.no_grad():
            m.weight.copy_(w)
            m.bias.copy_(torch.as_tensor(np.asarray(node.bias, np.float32)))
        return PerStep(m)
    if isinstance(node, nir.Flatten):
        end = node.end_dim + 2 if node.end_dim >= 0 else node.end_dim
        return nn.Flatten(start_dim=node.start_dim + 2, end_dim=end)
    raise ParameterError(f"NIR node {type(node).__name__} is not supported by from_nir")


def from_nir(graph, dt: float = 1e-4) -> Sequential:
    """Build an :class:`~neurosparse.Sequential` from a chain-shaped ``nir.NIRGraph``.

    ``dt`` (seconds per step) applies to nodes not written by :func:`to_nir`.
    """
    dt = _check_dt(dt)
    nxt: dict[str, str] = {}
    for a, b in graph.edges:
        if a in nxt:
            raise ParameterError(f"NIR graph is not a chain: node {a!r} has several successors")
        nxt[a] = b
    starts = [n for n in graph.nodes if n not in {b for _, b in graph.edges}]
    if len(starts) != 1:
        raise ParameterError(f"NIR graph must have one input node, found {starts}")
    import nir

    order, node = [], starts[0]
    while node in nxt:
        node = nxt[node]
        if len(order) > len(graph.nodes):
            raise ParameterError("NIR graph has a cycle (recurrent graphs are not supported)")
        order.append(node)
    modules = [
        _import_layer(graph.nodes[n], dt)
        for n in order
        if not isinstance(graph.nodes[n], (nir.Input, nir.Output))
    ]
    return Sequential(*modules)
