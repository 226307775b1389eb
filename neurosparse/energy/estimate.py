"""Energy and latency of counted work on one hardware profile (per inference = per sample).

Energy (pJ constants × counts, static power × latency):

* event execution: ``synops·synop + macs·mac + neuron_updates·neuron_update +
  spikes·spike + weight_bytes_read·weight_byte + state_bytes_rw·state_byte``
* dense execution: ``dense_macs·mac + neuron_updates·neuron_update +
  dense_weight_bytes_read·weight_byte + state_bytes_rw·state_byte +
  activation_bytes·activation_byte``
* plus ``static_mw × latency``.

Latency per time step:

* ``"event"`` model (neuromorphic chips): every layer runs on its own cores in parallel
  (``ceil(units / neurons_per_core)`` cores, at most ``cores``), so a step takes the
  slowest layer's ``(ops × time per op) / cores`` plus the barrier ``sync_ns``, and at
  least ``min_timestep_ns`` (real-time chips). Optimistic: ignores mesh congestion.
* ``"roofline"`` model (CPU/GPU): layers run one after another, each taking
  ``max(ops / macs_per_s, bytes / bytes_per_s) + layer_overhead_ns``.

A sample's latency is the sum over its time steps; EDP = energy × latency.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from .counts import LayerCounts
from .profiles import HardwareProfile

PJ = 1e-12
NS = 1e-9


def _work(c: dict[str, float], execution: str) -> dict[str, float]:
    """Map counts to (ops priced per constant) for an execution mode."""
    if execution == "event":
        return {
            "synop_pj": c["synops"], "mac_pj": c["macs"],
            "neuron_update_pj": c["neuron_updates"], "spike_pj": c["spikes"],
            "weight_byte_pj": c["weight_bytes_read"], "state_byte_pj": c["state_bytes_rw"],
            "activation_byte_pj": 0.0,
        }
    return {
        "synop_pj": 0.0, "mac_pj": c["dense_macs"],
        "neuron_update_pj": c["neuron_updates"], "spike_pj": 0.0,
        "weight_byte_pj": c["dense_weight_bytes_read"], "state_byte_pj": c["state_bytes_rw"],
        "activation_byte_pj": c["activation_bytes"],
    }


def dynamic_energy_j(counts: dict[str, float], profile: HardwareProfile,
                     which: str = "value") -> float:
    """Dynamic energy in joules of ``counts`` (which = "value", "low" or "high")."""
    total = 0.0
    for key, amount in _work(counts, profile.execution).items():
        if amount:
            lo, hi = profile.bounds(key)
            const = {"value": profile.value(key), "low": lo, "high": hi}[which]
            total += amount * const
    return total * PJ


def _step_counts(layer: LayerCounts, t: int, steps: int) -> dict[str, float]:
    seq = layer.per_step
    if seq["neuron_updates"] or seq["dense_macs"] or seq["synops"] or seq["macs"]:
        return {k: (v[t] if t < len(v) else 0.0) for k, v in seq.items()}
    return {k: layer.totals.get(k, 0.0) / max(steps, 1) for k in seq}


def layer_step_time_s(c: dict[str, float], profile: HardwareProfile, units: int) -> float:
    """Time of one layer in one step (per sample counts), excluding barriers and floors."""
    lat = profile.latency
    if lat["model"] == "event":
        if profile.execution == "event":
            busy = c["synops"] * lat["synop_ns"] + c["macs"] * lat["mac_ns"]
        else:
            busy = c["dense_macs"] * lat["mac_ns"]
        busy += c["neuron_updates"] * lat["neuron_update_ns"]
        cores = min(lat["cores"], max(1, math.ceil(units / lat["neurons_per_core"])))
        return busy / cores * NS
    if profile.execution == "event":
        ops = c["synops"] + c["macs"] + c["neuron_updates"]
        nbytes = c["weight_bytes_read"] + c["state_bytes_rw"]
    else:
        ops = c["dense_macs"] + c["neuron_updates"]
        nbytes = c["dense_weight_bytes_read"] + c["state_bytes_rw"] + c["activation_bytes"]
    if not ops and not nbytes:
        return 0.0
    return max(ops / lat["macs_per_s"], nbytes / lat["bytes_per_s"]) + lat[
        "layer_overhead_ns"] * NS


@dataclass
class HardwareResult:
    """Energy and latency of one model on one profile, per inference."""

    name: str
    title: str
    execution: str
    energy_j: float
    energy_low_j: float
    energy_high_j: float
    dynamic_j: float
    static_j: float
    latency_s: float
    latency_low_s: float
    latency_high_s: float
    edp_js: float
    chips: int
    layer_energy_j: dict[str, float] = field(default_factory=dict)
    layer_latency_s: dict[str, float] = field(default_factory=dict)
    uncertain: list[str] = field(default_factory=list)
    notes: str = ""

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> HardwareResult:
        return cls(**d)


def _latency_s(layers, samples, steps, profile: HardwareProfile, bound: str):
    """Total latency per sample and per-layer busy time; bound picks low/high time constants."""
    prof = profile
    if bound != "value":
        lat = dict(profile.latency)
        for k in lat:
            if k != "model":
                lo, hi = profile.bounds(k)
                # more throughput means less time: take the opposite end for *_per_s
                if k.endswith("_per_s"):
                    lat[k] = hi if bound == "low" else lo
                else:
                    lat[k] = lo if bound == "low" else hi
        prof = HardwareProfile(**{**profile.__dict__, "latency": lat})
    lat = prof.latency
    per_layer = {layer.name: 0.0 for layer in layers}
    total = 0.0
    for t in range(steps):
        times = []
        for layer in layers:
            c = {k: v / samples for k, v in _step_counts(layer, t, steps).items()}
            dt = layer_step_time_s(c, prof, layer.units)
            per_layer[layer.name] += dt
            times.append(dt)
        if lat["model"] == "event":
            step = (max(times) if times else 0.0) + lat["sync_ns"] * NS
        else:
            step = sum(times)
        total += max(step, lat["min_timestep_ns"] * NS)
    return total, per_layer


def estimate(layers: list[LayerCounts], samples: int, steps: int,
             profile: HardwareProfile) -> HardwareResult:
    """Energy, latency and EDP per inference of the counted ``layers`` on ``profile``."""
    samples = max(samples, 1)
    steps = max(steps, 1)
    per_sample = [{k: v / samples for k, v in layer.totals.items()} for layer in layers]
    layer_e = {layer.name: dynamic_energy_j(c, profile) for layer, c in zip(layers, per_sample)}
    dyn = {w: sum(dynamic_energy_j(c, profile, w) for c in per_sample)
           for w in ("value", "low", "high")}
    lat, layer_lat = _latency_s(layers, samples, steps, profile, "value")
    lat_lo, _ = _latency_s(layers, samples, steps, profile, "low")
    lat_hi, _ = _latency_s(layers, samples, steps, profile, "high")
    s_lo, s_hi = profile.bounds("static_mw")
    static = profile.value("static_mw") * 1e-3 * lat
    energy = dyn["value"] + static
    e_lo = dyn["low"] + s_lo * 1e-3 * lat_lo
    e_hi = dyn["high"] + s_hi * 1e-3 * lat_hi
    neurons = sum(layer.units for layer in layers
                  if layer.kind in ("neuron", "recurrent", "activation", "exact"))
    cap = profile.capacity.get("neurons")
    chips = max(1, math.ceil(neurons / cap)) if cap else 1
    return HardwareResult(
        name=profile.name, title=profile.title, execution=profile.execution,
        energy_j=energy, energy_low_j=min(e_lo, energy), energy_high_j=max(e_hi, energy),
        dynamic_j=dyn["value"], static_j=static, latency_s=lat,
        latency_low_s=min(lat_lo, lat), latency_high_s=max(lat_hi, lat),
        edp_js=energy * lat, chips=chips, layer_energy_j=layer_e, layer_latency_s=layer_lat,
        uncertain=sorted(profile.uncertain), notes=profile.notes,
    )


__all__ = ["HardwareResult", "estimate", "dynamic_energy_j", "layer_step_time_s"]
