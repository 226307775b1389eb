"""Per-layer operation counts kept by :class:`neurosparse.energy.Meter`.

Every count is a total over all samples and time steps the meter saw; the report
divides by the number of samples to give *per inference* figures.

Fields (the first nine are the keys of :data:`neurosparse._counters.COUNT_KEYS`):

``synops``                  effective accumulates: non-zero binary/ternary inputs × fan-out
                            (NeuroBench ``Effective_ACs``)
``macs``                    effective multiply-accumulates: non-zero *graded* inputs × fan-out
                            (NeuroBench ``Effective_MACs``); event-driven execution
``dense_macs``              multiply-accumulates a dense processor executes (every tap,
                            padding included, as thop/ptflops count them)
``neuron_updates``          neuron (or activation) state updates
``spikes``                  non-zero outputs emitted by neuron/activation layers
``events_in``               non-zero input elements of synaptic layers
``inputs_in``               input elements of synaptic layers
``weight_bytes_read``       weight bytes an event-driven core fetches (one weight per op)
``state_bytes_rw``          neuron-state bytes read and written
``dense_synops``            NeuroBench ``Dense``: all-ones weights and inputs, padding excluded
``delta_events_in``         input elements that changed since the previous time step
``delta_inputs_in``         input elements compared for ``delta_events_in``
``dense_weight_bytes_read`` weight bytes a dense processor reads (weights once per step and sample)
``activation_bytes``        input + output activation bytes a dense processor moves
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .._counters import COUNT_KEYS

EXTRA_KEYS = (
    "dense_synops",
    "delta_events_in",
    "delta_inputs_in",
    "dense_weight_bytes_read",
    "activation_bytes",
)
FIELDS: tuple[str, ...] = tuple(COUNT_KEYS) + EXTRA_KEYS

# Counts that are tracked per time step (for the latency model and sparsity-over-time plots).
STEP_FIELDS = (*COUNT_KEYS, "dense_weight_bytes_read", "activation_bytes")

KINDS = ("synaptic", "recurrent", "neuron", "activation", "pool", "norm", "exact")


def _ratio_sparsity(nonzero: float, total: float) -> float | None:
    return None if total <= 0 else 1.0 - nonzero / total


@dataclass
class LayerCounts:
    """Counts of one module over everything the meter saw.

    Attributes
    ----------
    name, type, kind : str
        Module path in the model, class name, and one of :data:`KINDS`.
    exact : bool
        True when the module counted itself (``OpCounter``), False when a hook counted it.
    totals : dict
        ``FIELDS`` → total over samples and steps.
    per_step : dict
        ``STEP_FIELDS`` → list indexed by time step (totals over samples).
    units : int
        Output units per sample and time step (neurons a chip must host).
    params_bytes : int
        Bytes of the module's own parameters (its weight memory footprint).
    state_vars : int
        Number of state variables per neuron (0 for stateless layers).
    notes : list of str
        Approximations made while counting this layer.
    spiking : bool
        False for a neuron layer whose output is a voltage, not spikes (Norse's leaky
        integrator readouts): it has no output sparsity and is left out of the report's
        activation sparsity (NeuroBench hooks spiking layers only).
    """

    name: str
    type: str
    kind: str
    exact: bool = False
    totals: dict[str, float] = field(default_factory=lambda: dict.fromkeys(FIELDS, 0))
    per_step: dict[str, list[float]] = field(
        default_factory=lambda: {k: [] for k in STEP_FIELDS}
    )
    units: int = 0
    params_bytes: int = 0
    state_vars: int = 0
    calls: int = 0
    notes: list[str] = field(default_factory=list)
    spiking: bool = True

    def add(self, amounts: dict[str, float],
            step_amounts: list[dict[str, float]] | dict[str, list[float]] | None,
            first_step: int = 0) -> None:
        """Add one call's totals; ``step_amounts[i]`` goes to step ``first_step + i``.

        ``step_amounts`` may also be key-major, count -> per-step values (all of one
        length): a sequence's split then costs one list operation per count, not one dict
        lookup per count and step (~0.7 ms a call for 100 steps)."""
        totals = self.totals
        for key, value in amounts.items():
            totals[key] = totals.get(key, 0) + value
        if not step_amounts:
            return
        if isinstance(step_amounts, dict):
            n = len(next(iter(step_amounts.values())))
            columns = step_amounts
        else:
            n = len(step_amounts)
            columns = {key: [step.get(key) or 0.0 for step in step_amounts]
                       for key in STEP_FIELDS} if n > 1 else None
        end = first_step + n
        for key in STEP_FIELDS:
            seq = self.per_step[key]
            if len(seq) < end:
                seq.extend([0.0] * (end - len(seq)))
            if columns is None:  # one step
                v = step_amounts[0].get(key)
                if v:
                    seq[first_step] += v
                continue
            values = columns.get(key)
            if values is not None:
                seq[first_step:end] = [a + b for a, b in zip(seq[first_step:end], values)]

    def note(self, text: str) -> None:
        if text not in self.notes:
            self.notes.append(text)

    # -- derived figures ---------------------------------------------------------------
    @property
    def input_sparsity(self) -> float | None:
        """Fraction of zero input elements (synaptic layers)."""
        return _ratio_sparsity(self.totals["events_in"], self.totals["inputs_in"])

    @property
    def output_sparsity(self) -> float | None:
        """Fraction of zero outputs (neuron and activation layers); None for a layer whose
        output is a voltage (``spiking`` False): its "no spikes" are not zeros."""
        if not self.spiking:
            return None
        return _ratio_sparsity(self.totals["spikes"], self.totals["neuron_updates"])

    @property
    def temporal_sparsity(self) -> float | None:
        """Fraction of input elements unchanged since the previous step (delta sparsity)."""
        return _ratio_sparsity(self.totals["delta_events_in"], self.totals["delta_inputs_in"])

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "type": self.type,
            "kind": self.kind,
            "exact": self.exact,
            "calls": self.calls,
            "units": self.units,
            "params_bytes": self.params_bytes,
            "state_vars": self.state_vars,
            "totals": {k: _num(v) for k, v in self.totals.items()},
            "per_step": {k: [_num(v) for v in seq] for k, seq in self.per_step.items()},
            "input_sparsity": self.input_sparsity,
            "output_sparsity": self.output_sparsity,
            "temporal_sparsity": self.temporal_sparsity,
            "notes": list(self.notes),
            "spiking": self.spiking,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> LayerCounts:
        totals = dict.fromkeys(FIELDS, 0)
        totals.update(d["totals"])
        per_step = {k: [] for k in STEP_FIELDS}
        per_step.update({k: list(v) for k, v in d.get("per_step", {}).items()})
        return cls(
            name=d["name"], type=d["type"], kind=d["kind"], exact=bool(d["exact"]),
            totals=totals, per_step=per_step, units=int(d["units"]),
            params_bytes=int(d["params_bytes"]), state_vars=int(d["state_vars"]),
            calls=int(d.get("calls", 0)), notes=list(d.get("notes", [])),
            spiking=bool(d.get("spiking", True)),
        )


def _num(v: float) -> float | int:
    """Integers stay integers in JSON; spread-out per-step shares stay floats."""
    fv = float(v)
    return int(fv) if fv.is_integer() else fv
