"""Energy and latency of counted work on one hardware profile (per inference = per sample).

Energy (pJ constants × counts, static power × latency):

* event execution: ``synops·synop + macs·mac + neuron_updates·neuron_update +
  spikes·spike + weight_bytes_read·weight_byte + state_bytes_rw·state_byte``
* dense execution: ``dense_macs·mac + neuron_updates·neuron_update +
  dense_weight_bytes_read·weight_byte + state_bytes_rw·state_byte +
  activation_bytes·activation_byte``
* plus static energy ``static_mw × latency`` (reported separately).

Mapping onto a neuromorphic chip (``"event"`` latency model):

* layers are grouped into **stages**: each synaptic layer (Linear, conv, pooling, norm)
  joins the neuron layer that follows it, because these chips store a connection's
  weights in the core of its target neuron;
* a stage occupies ``max(ceil(neurons / neurons_per_core), ceil(synapses /
  synapses_per_core))`` cores, where ``neurons`` are the units of its neuron layer (per
  sample), ``synapses`` the connections of its synaptic layers (dense taps per step and
  sample, i.e. no weight sharing) and ``synapses_per_core = capacity.synapses / cores``;
* stages sit on separate cores and **pipeline**: in every time step all stages work at
  once, so a step takes the slowest stage's ``(ops × time per op) / its cores`` plus the
  barrier ``sync_ns`` (at least ``min_timestep_ns``), and the last input needs
  ``stages - 1`` extra steps to reach the output (pipeline fill). Optimistic: ignores
  mesh congestion and input/output with a host.

Static energy, ``static="occupied"`` (default): the chip's static power scaled to the cores
the network occupies, ``static_mw × occupied cores / cores per chip``, for the latency;
``static="chip"`` charges whole chips (``static_mw × chips``), the honest figure when the
rest of the chip is powered but idle. Roofline profiles (CPU/GPU) charge the whole device
either way.

``"roofline"`` latency model (CPU/GPU): layers run one after another, each taking
``max(ops / macs_per_s, bytes / bytes_per_s) + layer_overhead_ns``.

EDP = energy × latency.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, field
from typing import Any

from ..errors import InputValueError
from .counts import LayerCounts
from .profiles import HardwareProfile

PJ = 1e-12
NS = 1e-9
STATIC_MODES = ("occupied", "chip")
_NEURON_KINDS = ("neuron", "activation", "recurrent")


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


def stages(layers: list[LayerCounts]) -> list[list[LayerCounts]]:
    """Layers grouped so that each stage ends with the neuron layer its synapses feed."""
    out: list[list[LayerCounts]] = []
    cur: list[LayerCounts] = []
    for layer in layers:
        cur.append(layer)
        if layer.kind in _NEURON_KINDS or (layer.kind == "exact"
                                           and layer.totals.get("neuron_updates", 0) > 0):
            out.append(cur)
            cur = []
    if cur:
        out.append(cur)
    return out


def stage_cores(stage: list[LayerCounts], samples: int, steps: int,
                profile: HardwareProfile) -> int:
    """Cores one stage occupies on an event-model chip (see the module docstring)."""
    lat = profile.latency
    neurons = max((layer.units for layer in stage if layer.kind in _NEURON_KINDS
                   or layer.kind == "exact"), default=0) or max(
        (layer.units for layer in stage), default=0)
    need = math.ceil(neurons / lat["neurons_per_core"]) if neurons else 1
    spc = profile.synapses_per_core
    if spc:
        taps = sum(max(layer.totals.get("dense_synops", 0), layer.totals.get("dense_macs", 0))
                   for layer in stage if layer.kind not in _NEURON_KINDS)
        need = max(need, math.ceil(taps / max(samples * steps, 1) / spc))
    return max(1, int(need))


def layer_step_time_s(c: dict[str, float], profile: HardwareProfile, cores: int = 1) -> float:
    """Time of one layer in one step (per sample counts) on ``cores`` cores (event model),
    excluding barriers and floors."""
    lat = profile.latency
    if lat["model"] == "event":
        if profile.execution == "event":
            busy = c["synops"] * lat["synop_ns"] + c["macs"] * lat["mac_ns"]
        else:
            busy = c["dense_macs"] * lat["mac_ns"]
        busy += c["neuron_updates"] * lat["neuron_update_ns"]
        return busy / max(cores, 1) * NS
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
    provenance: str = "unspecified"
    static_mode: str = "occupied"
    cores: int = 0
    stages: int = 0
    # False when the profile publishes no energy per operation at all (Speck): its dynamic
    # energy is then unknown, not 0 J, and reports say "not published"
    dynamic_published: bool = True

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> HardwareResult:
        return cls(**d)


def _latency_s(layers, samples, steps, profile: HardwareProfile, bound: str):
    """Total latency per sample and per-layer busy time; bound picks low/high time constants.

    Event model: per step, the slowest stage (its layers' work over its cores) plus the
    barrier; then ``stages - 1`` pipeline-fill steps of the mean step time.
    """
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
    event = lat["model"] == "event"
    groups = stages(layers) if event else [[layer] for layer in layers]
    cores = [stage_cores(g, samples, steps, prof) if event else 1 for g in groups]
    total = 0.0
    for t in range(steps):
        times = []
        for g, n in zip(groups, cores):
            busy = 0.0
            for layer in g:
                c = {k: v / samples for k, v in _step_counts(layer, t, steps).items()}
                dt = layer_step_time_s(c, prof, n)
                per_layer[layer.name] += dt
                busy += dt
            times.append(busy)
        if event:
            step = (max(times) if times else 0.0) + lat["sync_ns"] * NS
        else:
            step = sum(times)
        total += max(step, lat["min_timestep_ns"] * NS)
    if event and len(groups) > 1:
        total += (len(groups) - 1) * total / steps  # pipeline fill
    return total, per_layer


def check_counts(layers: list[LayerCounts], samples: int) -> None:
    """Refuse inputs that would turn into a silently wrong per-inference figure.

    Parameters
    ----------
    layers : list of LayerCounts
        Counts to be priced (totals and per-step lists).
    samples : int
        Number of samples the totals are divided by.

    Raises
    ------
    InputValueError
        If ``samples`` is below 1 (per-inference figures would divide by zero, or be the
        run's totals if clamped to 1) or a count is negative, NaN or infinite (a NaN
        would make every energy NaN; a negative count would cancel real work).
    """
    if isinstance(samples, bool) or not isinstance(samples, numbers.Integral) or samples < 1:
        raise InputValueError(
            f"samples must be an integer >= 1 (figures are per inference: totals / "
            f"samples), got {samples!r}; run the model inside the Meter, or pass the "
            "number of samples the counts were summed over")
    for layer in layers:
        seqs = [(k, [v]) for k, v in layer.totals.items()] + list(layer.per_step.items())
        for key, seq in seqs:
            # one sum and one min per list (per-step lists can be long): a NaN or inf
            # makes the sum non-finite, a negative entry makes the min negative
            if seq and not (all(isinstance(v, numbers.Real) for v in seq)
                            and math.isfinite(sum(seq)) and min(seq) >= 0):
                bad = next((v for v in seq if not (isinstance(v, numbers.Real)
                                                   and math.isfinite(v) and v >= 0)), seq)
                raise InputValueError(
                    f"layer {layer.name!r}: count {key!r} = {bad!r} must be a finite "
                    "number >= 0; counts come from a Meter, so correct or drop the "
                    "edited or corrupted value")


def estimate(layers: list[LayerCounts], samples: int, steps: int,
             profile: HardwareProfile, static: str = "occupied") -> HardwareResult:
    """Energy, latency and EDP per inference of the counted ``layers`` on ``profile``.

    ``static``: ``"occupied"`` charges static power for the cores the network occupies,
    ``"chip"`` for whole chips (see the module docstring).
    """
    from .._checks import check_choice

    check_choice("static", static, STATIC_MODES)
    check_counts(layers, samples)
    steps = max(steps, 1)
    per_sample = [{k: v / samples for k, v in layer.totals.items()} for layer in layers]
    layer_e = {layer.name: dynamic_energy_j(c, profile) for layer, c in zip(layers, per_sample)}
    dyn = {w: sum(dynamic_energy_j(c, profile, w) for c in per_sample)
           for w in ("value", "low", "high")}
    lat, layer_lat = _latency_s(layers, samples, steps, profile, "value")
    lat_lo, _ = _latency_s(layers, samples, steps, profile, "low")
    lat_hi, _ = _latency_s(layers, samples, steps, profile, "high")
    event = profile.latency["model"] == "event"
    # placeholder core sizes (one core per neuron) would print a chip count that means nothing
    mapped = profile.maps_cores
    used = (sum(stage_cores(g, samples, steps, profile) for g in stages(layers))
            if mapped else 0)
    chips = max(1, math.ceil(used / profile.cores)) if mapped else 1
    neurons = sum(layer.units for layer in layers
                  if layer.kind in ("neuron", "recurrent", "activation", "exact"))
    cap = profile.capacity.get("neurons")
    if cap:
        chips = max(chips, math.ceil(neurons / cap))
    if not event:
        share = 1.0  # a CPU/GPU is powered as a whole
    elif static == "chip":
        share = float(chips)
    else:
        share = used / profile.cores if mapped else 1.0
    s_lo, s_hi = profile.bounds("static_mw")
    static_j = profile.value("static_mw") * 1e-3 * share * lat
    energy = dyn["value"] + static_j
    e_lo = dyn["low"] + s_lo * 1e-3 * share * lat_lo
    e_hi = dyn["high"] + s_hi * 1e-3 * share * lat_hi
    return HardwareResult(
        name=profile.name, title=profile.title, execution=profile.execution,
        energy_j=energy, energy_low_j=min(e_lo, energy), energy_high_j=max(e_hi, energy),
        dynamic_j=dyn["value"], static_j=static_j, latency_s=lat,
        latency_low_s=min(lat_lo, lat), latency_high_s=max(lat_hi, lat),
        edp_js=energy * lat, chips=chips, layer_energy_j=layer_e, layer_latency_s=layer_lat,
        uncertain=sorted(profile.uncertain), notes=profile.notes,
        provenance=profile.provenance, static_mode=static if event else "device",
        cores=used, stages=len(stages(layers)) if event else 0,
        dynamic_published=any(float(v) > 0 for k, v in profile.energy.items()
                              if k.endswith("_pj")),
    )


__all__ = ["HardwareResult", "estimate", "check_counts", "dynamic_energy_j",
           "layer_step_time_s", "stages", "stage_cores", "STATIC_MODES"]
