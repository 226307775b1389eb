"""Energy/latency report: terminal table, Markdown, versioned JSON and figures.

All figures are **per inference** (per sample): totals over the metered run divided by
the number of samples. JSON schema ``neurosparse.energy.report`` version 1::

    {"schema": "neurosparse.energy.report", "version": 1, "model": str,
     "samples": int, "time_steps": int, "layout": "TB" | "BT" | "B",
     "totals": {count: per-inference value},
     "sparsity": {"activation": float|null, "input": float|null, "temporal": float|null},
     "layers": [LayerCounts.to_dict() (totals over all samples)],
     "hardware": [HardwareResult.to_dict()], "comparison": [...], "definitions": {...}}
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .._checks import check_choice
from ..errors import InputValueError, ParameterError
from . import _format as fmt
from .counts import FIELDS, STEP_FIELDS, LayerCounts
from .estimate import HardwareResult, check_counts, estimate
from .profiles import HardwareProfile, list_profiles, load_profile

SCHEMA = "neurosparse.energy.report"
SCHEMA_VERSION = 1
EXECUTION_CHOICES = ("native", "event", "dense", "both")
NEURON_KINDS = ("neuron", "activation", "recurrent")
DEFINITIONS = {
    "synops": "effective accumulates: non-zero binary/ternary inputs x non-zero fan-out "
              "(NeuroBench Effective_ACs; bias excluded)",
    "macs": "effective multiply-accumulates for graded non-zero inputs (NeuroBench "
            "Effective_MACs)",
    "dense_macs": "multiply-accumulates of dense execution (every tap, padding included)",
    "dense_synops": "NeuroBench Dense: all-ones weights and inputs (padding taps excluded)",
    "activation_sparsity": "zeros / all outputs of neuron and activation layers (leaky-"
                           "integrator readouts excluded: voltages, not spikes), all steps "
                           "and samples (NeuroBench ActivationSparsity)",
    "input_sparsity": "zeros / all inputs of all synaptic layers together (a mean over "
                      "the layers weighted by their inputs; per layer: the layer table)",
    "temporal_sparsity": "input elements unchanged since the previous step / all, first "
                         "step compared with zero (delta sparsity), over the inputs of "
                         "all synaptic layers together, as input_sparsity",
    "per_inference": "totals divided by the number of samples",
}
# One line per column of the hardware table (printed under it by the text report).
LAYER_COLUMNS = {
    "SynOps": "accumulates triggered by ±1 events: events × fan-out (weights read)",
    "MACs": "multiply-accumulates on graded (non-binary) non-zero inputs",
    "Dense MACs": "what a dense layer would do on the same input (zeros included)",
    "Neuron upd.": "neuron state updates (neurons × time steps)",
    "Spikes": "spikes emitted by the layer",
    "Sparsity": "share of zeros in the layer's output (neurons) or input (synapses)",
    "Weights": "parameter bytes of the layer",
    "State r/w": "bytes of neuron state read and written",
}

HARDWARE_COLUMNS = {
    "Hardware": "profile (≈: some constants uncertain, see its sources)",
    "Provenance": ("measured silicon (quoted: second-hand), pre-silicon simulation, estimate, "
                   "lower-bound"),
    "Energy": "dynamic + static, per inference (≥: a lower bound)",
    "Dynamic": "counted ops × energy per op (≥: a lower bound; "
               "not published: the profile has none)",
    "Static": "static power × latency, for the cores in use (or chips/device)",
    "Range": "energy with the uncertain constants at their low / high ends (≥: bounds)",
    "Latency": "pipelined stages on chips; layers in turn on CPU/GPU",
    "Cores": "cores the mapping occupies / chips (neuromorphic profiles)",
}


def _resolve(hardware, execution: str) -> list[tuple[str, HardwareProfile]]:
    if hardware is None:
        hardware = list_profiles()
    if isinstance(hardware, (str, dict, HardwareProfile, Path)):
        hardware = [hardware]
    out: list[tuple[str, HardwareProfile]] = []
    for spec in hardware:
        prof = load_profile(spec)
        suffixed = isinstance(spec, str) and ":" in spec and not spec.endswith(".toml")
        modes = {"both": ["event", "dense"], "event": ["event"], "dense": ["dense"]}.get(
            execution, [prof.execution])
        if suffixed:
            modes = [prof.execution]
        for mode in modes:
            p = prof.with_execution(mode)
            label = prof.name if (execution == "native" and not suffixed) else f"{prof.name}:{mode}"
            same = [q for lbl, q in out if lbl == label]
            if not same:
                out.append((label, p))
            elif same[0] != p:
                # two different profiles under one name: one would vanish from the report
                raise ParameterError(
                    f"two hardware profiles are named {prof.name!r} with different "
                    "constants; give one of them another 'name'"
                )
    return out


class Report:
    """Per-layer counts and per-hardware energy/latency of one metered run."""

    def __init__(self, model: str, samples: int, time_steps: int, layout: str,
                 layers: list[LayerCounts], hardware: list[HardwareResult]) -> None:
        self.model = model
        self.samples = int(samples)
        self.time_steps = int(time_steps)
        self.layout = layout
        self.layers = list(layers)
        self.hardware = list(hardware)

    @classmethod
    def build(cls, meter, hardware: Sequence | str | None, execution: str = "native",
              static: str = "occupied") -> Report:
        check_choice("execution", execution, EXECUTION_CHOICES)
        layers = meter.counts()
        if not layers:
            raise InputValueError(
                "the meter has seen no work: run the model inside `with Meter(model) as m:` "
                "before calling m.report()"
            )
        if meter.samples == 0:
            raise InputValueError(
                f"the meter recorded work ({', '.join(c.name for c in layers[:4])}) but no "
                f"sample: with layout={meter.layout!r} samples are counted from calls of "
                "the metered model itself, and its layers were called directly; call the "
                "model (model(x)) inside the `with` block, or use the default "
                "layout='auto', which counts layers called directly"
            )
        results = []
        for label, prof in _resolve(hardware, execution):
            res = estimate(layers, meter.samples, meter.time_steps, prof, static=static)
            res.name = label
            results.append(res)
        return cls(meter.name, meter.samples, meter.time_steps, meter.layout, layers, results)

    # -- figures -------------------------------------------------------------------------
    def per_inference(self, layer: LayerCounts) -> dict[str, float]:
        return {k: v / max(self.samples, 1) for k, v in layer.totals.items()}

    @property
    def totals(self) -> dict[str, float]:
        """Per-inference counts summed over layers."""
        out = dict.fromkeys(FIELDS, 0.0)
        for layer in self.layers:
            for k, v in self.per_inference(layer).items():
                out[k] = out.get(k, 0.0) + v
        return out

    def _ratio(self, num: str, den: str, kinds=None, spiking_only: bool = False
               ) -> float | None:  # fmt: skip
        n = d = 0.0
        for layer in self.layers:
            if (kinds is None or layer.kind in kinds) and (layer.spiking or not spiking_only):
                n += layer.totals[num]
                d += layer.totals[den]
        return None if d <= 0 else 1.0 - n / d

    @property
    def activation_sparsity(self) -> float | None:
        """NeuroBench ActivationSparsity over neuron/activation layers (and recurrent
        cells); leaky-integrator readouts (voltages, no spikes) are left out, as there."""
        return self._ratio("spikes", "neuron_updates", NEURON_KINDS, spiking_only=True)

    @property
    def input_sparsity(self) -> float | None:
        """Zeros / all input elements of all synaptic layers together (not one layer's)."""
        return self._ratio("events_in", "inputs_in")

    @property
    def temporal_sparsity(self) -> float | None:
        """Input elements unchanged since the previous step / all, over the inputs of all
        synaptic layers together (self-counting ones included)."""
        return self._ratio("delta_events_in", "delta_inputs_in")

    def sparsity_over_time(self) -> dict[str, list[float | None]]:
        """Per time step: activation sparsity (neuron outputs) and input sparsity."""
        steps = max((len(v) for layer in self.layers for v in layer.per_step.values()),
                    default=0)
        act, inp = [], []
        for t in range(steps):
            def tot(key, kinds=None, _t=t):
                return sum(layer.per_step[key][_t] for layer in self.layers
                           if _t < len(layer.per_step[key]) and (kinds is None
                                                                 or layer.kind in kinds))
            upd, spk = tot("neuron_updates", NEURON_KINDS), tot("spikes", NEURON_KINDS)
            ins, ev = tot("inputs_in"), tot("events_in")
            act.append(None if upd <= 0 else 1 - spk / upd)
            inp.append(None if ins <= 0 else 1 - ev / ins)
        return {"activation": act, "input": inp}

    def layers_without_steps(self) -> list[str]:
        """Layers with counts but no per-step record (left out of sparsity over time)."""
        return [layer.name for layer in self.layers
                if any(layer.totals.get(k) for k in ("inputs_in", "neuron_updates"))
                and not any(layer.per_step["inputs_in"]) and not any(
                    layer.per_step["neuron_updates"])]

    def comparison(self) -> list[dict[str, Any]]:
        """Event vs dense execution on the same hardware, where both were evaluated."""
        by_base: dict[str, dict[str, HardwareResult]] = {}
        for r in self.hardware:
            by_base.setdefault(r.name.split(":")[0], {})[r.execution] = r
        rows = []
        for base, modes in by_base.items():
            if "event" in modes and "dense" in modes:
                ev, de = modes["event"].energy_j, modes["dense"].energy_j
                rows.append({
                    "hardware": base, "event_j": ev, "dense_j": de,
                    "dense_over_event": (de / ev) if ev > 0 else None,
                    "event_latency_s": modes["event"].latency_s,
                    "dense_latency_s": modes["dense"].latency_s,
                })
        return rows

    # -- tables --------------------------------------------------------------------------
    def _layer_rows(self, energy_cols: bool = True) -> tuple[list[str], list[list[str]]]:
        header = ["Layer", "Type", "SynOps", "MACs", "Dense MACs", "Neuron upd.", "Spikes",
                  "Sparsity", "Weights", "State r/w"]
        if energy_cols:
            header += [f"E {r.name}" for r in self.hardware]
        rows = []
        for layer in self.layers:
            c = self.per_inference(layer)
            sp = layer.output_sparsity if layer.kind in NEURON_KINDS else layer.input_sparsity
            row = [layer.name + ("" if not layer.exact else " *"), layer.type,
                   fmt.count(c["synops"]), fmt.count(c["macs"]), fmt.count(c["dense_macs"]),
                   fmt.count(c["neuron_updates"]), fmt.count(c["spikes"]), fmt.frac(sp),
                   fmt.nbytes(layer.params_bytes), fmt.nbytes(c["state_bytes_rw"])]
            if energy_cols:
                row += [dynamic_text(r, r.layer_energy_j.get(layer.name, 0.0))
                        for r in self.hardware]
            rows.append(row)
        t = self.totals
        total = ["Total", "", fmt.count(t["synops"]), fmt.count(t["macs"]),
                 fmt.count(t["dense_macs"]), fmt.count(t["neuron_updates"]),
                 fmt.count(t["spikes"]), fmt.frac(self.activation_sparsity),
                 fmt.nbytes(sum(layer.params_bytes for layer in self.layers)),
                 fmt.nbytes(t["state_bytes_rw"])]
        if energy_cols:
            total += [dynamic_text(r, r.dynamic_j) for r in self.hardware]
        rows.append(total)
        return header, rows

    def _hardware_rows(self) -> tuple[list[str], list[list[str]]]:
        header = list(HARDWARE_COLUMNS)
        rows = []
        for r in self.hardware:
            # "no range": the profile marks constants uncertain without giving bounds
            same = "no range" if r.uncertain else "exact"
            # a lower bound's range is one of lower bounds (its uncertain constants at
            # their ends), marked as its energies are
            rng = (bound_mark(r) + fmt.unit_range(r.energy_low_j, r.energy_high_j, "J")
                   if r.energy_low_j != r.energy_high_j else same)
            cores = f"{r.cores} / {r.chips}" if r.cores else "-"
            energy = bound_mark(r) + fmt.unit(r.energy_j, "J")
            rows.append([r.name + (" ≈" if r.uncertain else ""), r.provenance, energy,
                         dynamic_text(r, r.dynamic_j), fmt.unit(r.static_j, "J"), rng,
                         fmt.unit(r.latency_s, "s"), cores])
        return header, rows

    def column_legend(self, layers: bool = False) -> list[str]:
        """One line per column of the hardware table (and of the layer table)."""
        cols = {**(LAYER_COLUMNS if layers else {}), **HARDWARE_COLUMNS}
        width = max(len(k) for k in cols)
        static = sorted({r.static_mode for r in self.hardware})
        lines = [f"  {k:<{width}}  {v}" for k, v in cols.items()]
        if static:
            lines.append(f"  {'':<{width}}  static power charged for: "
                         f"{', '.join(_STATIC_WORDS.get(m, m) for m in static)}")
        return lines

    def _summary_line(self) -> str:
        def part(name: str, v: float | None) -> str:
            # "-." read as a value; say that no layer recorded it
            return f"{name} {fmt.frac(v)}" if v is not None else f"{name} not recorded"

        return (f"{self.model}: {self.samples} sample(s), {self.time_steps} time step(s), "
                f"layout {self.layout}; per inference. "
                f"{part('Activation sparsity', self.activation_sparsity)}, "
                f"{part('input sparsity (all synaptic layers)', self.input_sparsity)}, "
                f"{part('temporal sparsity (all synaptic layers)', self.temporal_sparsity)}.")

    def __str__(self) -> str:
        lh, lr = self._layer_rows()
        hh, hr = self._hardware_rows()
        parts = [self._summary_line(), "", fmt.text_table(lh, lr), "", fmt.text_table(hh, hr)]
        parts += self.footer_lines()
        return "\n".join(parts)

    def footer_lines(self) -> list[str]:
        """What follows the tables in text form: the dense-vs-event comparison (when
        asked for) and one line per column."""
        lines = []
        cmp = self.comparison()
        if cmp:
            lines += ["", "Dense vs event execution:"] + [
                f"  {c['hardware']}: dense {fmt.unit(c['dense_j'], 'J')} / event "
                f"{fmt.unit(c['event_j'], 'J')} = {c['dense_over_event'] or float('nan'):.3g}x"
                for c in cmp]
        return lines + ["", "Columns:", *self.column_legend(layers=True),
                        "* after a layer name: counted exactly by the module itself"]

    def __repr__(self) -> str:
        return (f"Report(model={self.model!r}, samples={self.samples}, "
                f"time_steps={self.time_steps}, layers={len(self.layers)}, "
                f"hardware={[r.name for r in self.hardware]})")

    def _energy_rows(self) -> tuple[list[str], list[list[str]]]:
        """(header, rows) of the dynamic energy per layer and hardware; a lower-bound
        profile's energies carry their ≥ here as everywhere."""
        return (["Layer"] + [r.name for r in self.hardware],
                [[layer.name] + [dynamic_text(r, r.layer_energy_j.get(layer.name, 0.0))
                                 for r in self.hardware] for layer in self.layers])

    def print(self, console=None) -> None:
        """Print with ``rich`` tables when rich is installed, else plain text."""
        try:
            from rich.console import Console
            from rich.table import Table
        except ImportError:
            print(self)
            return
        console = console or Console()
        console.print(self._summary_line())
        for (header, rows), title in ((self._layer_rows(energy_cols=False), "Per layer"),
                                      (self._energy_rows(), "Dynamic energy per layer"),
                                      (self._hardware_rows(), "Per hardware")):
            table = Table(title=title)
            for i, h in enumerate(header):
                # names and provenance are never cut; numbers may wrap in a narrow terminal
                table.add_column(h, justify="left" if i == 0 else "right",
                                 no_wrap=h in ("Hardware", "Provenance"))
            for row in rows:
                table.add_row(*row)
            console.print(table)
        console.print("\n".join(["Columns:", *self.column_legend()]))

    def to_markdown(self, path: str | Path | None = None) -> str:
        """Markdown report; written to ``path`` when given. Returns the text."""
        lh, lr = self._layer_rows(energy_cols=False)
        hh, hr = self._hardware_rows()
        parts = [f"# Energy and latency report: {self.model}", "", self._summary_line(), "",
                 "## Per layer (per inference)", "", fmt.md_table(lh, lr), "",
                 "## Per hardware", "", fmt.md_table(hh, hr), "",
                 *[f"- **{k}**: {v}" for k, v in HARDWARE_COLUMNS.items()], ""]
        if self.hardware:
            header = ["Layer"] + [f"{p} {r.name}" for r in self.hardware for p in ("E", "t")]
            # a lower bound's per-layer energies are lower bounds too (as in the text table)
            rows = [[layer.name] + [v for r in self.hardware for v in (
                dynamic_text(r, r.layer_energy_j.get(layer.name, 0.0)),
                fmt.unit(r.layer_latency_s.get(layer.name, 0.0), "s"))]
                for layer in self.layers]
            parts += ["## Energy and busy time per layer and hardware", "",
                      fmt.md_table(header, rows), ""]
        cmp = self.comparison()
        if cmp:
            rows = [[c["hardware"], fmt.unit(c["event_j"], "J"), fmt.unit(c["dense_j"], "J"),
                     f"{c['dense_over_event']:.3g}x" if c["dense_over_event"] else "-"]
                    for c in cmp]
            parts += ["## Dense vs event execution", "",
                      fmt.md_table(["Hardware", "Event", "Dense", "Dense / event"], rows), ""]
        notes = [f"- {layer.name}: {n}" for layer in self.layers for n in layer.notes]
        notes += [f"- {r.name}: {r.notes.strip()} (uncertain: {', '.join(r.uncertain)})"
                  for r in self.hardware if r.notes or r.uncertain]
        if notes:
            parts += ["## Notes", "", *notes, ""]
        parts += ["## Definitions", ""] + [f"- **{k}**: {v}" for k, v in DEFINITIONS.items()]
        text = "\n".join(parts) + "\n"
        if path is not None:
            Path(path).write_text(text)
        return text

    # -- JSON ----------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA, "version": SCHEMA_VERSION, "model": self.model,
            "samples": self.samples, "time_steps": self.time_steps, "layout": self.layout,
            "totals": self.totals,
            "sparsity": {"activation": self.activation_sparsity, "input": self.input_sparsity,
                         "temporal": self.temporal_sparsity},
            "layers": [layer.to_dict() for layer in self.layers],
            "hardware": [r.to_dict() for r in self.hardware],
            "comparison": self.comparison(),
            "definitions": dict(DEFINITIONS),
        }

    def to_json(self, path: str | Path | None = None) -> str:
        """JSON text (schema above); written to ``path`` when given."""
        text = json.dumps(self.to_dict(), indent=2, ensure_ascii=False)
        if path is not None:
            Path(path).write_text(text)
        return text

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Report:
        if d.get("schema") != SCHEMA:
            raise InputValueError(f"not a neurosparse energy report (schema {d.get('schema')!r})")
        if d.get("version") != SCHEMA_VERSION:
            raise InputValueError(
                f"energy report version {d.get('version')!r} is not supported; "
                f"this neurosparse reads version {SCHEMA_VERSION}"
            )
        layers = [LayerCounts.from_dict(x) for x in d["layers"]]
        # a hand-edited or truncated file must not print totals as per-inference figures
        # (samples 0 used to be read as 1) or NaN energies
        check_counts(layers, d["samples"])
        return cls(d["model"], d["samples"], d["time_steps"], d["layout"], layers,
                   [HardwareResult.from_dict(x) for x in d["hardware"]])

    @classmethod
    def from_json(cls, source: str | Path) -> Report:
        """Read a report from a JSON file path or JSON text."""
        text = str(source)
        if not text.lstrip().startswith("{"):
            text = Path(source).read_text()
        return cls.from_dict(json.loads(text))

    def plot(self, path: str | Path) -> Path:
        """Energy per layer per hardware, and sparsity over time, as one PNG/PDF/SVG."""
        from .plot import plot_report

        return plot_report(self, Path(path))


__all__ = ["Report", "SCHEMA", "SCHEMA_VERSION", "STEP_FIELDS"]


# how each static-power mode reads in the legend (estimate.STATIC_MODES, plus "device")
_STATIC_WORDS = {"occupied": "the cores in use (chips)", "chip": "whole chips",
                 "device": "the whole device (CPU/GPU)"}


def dynamic_text(r, joules: float) -> str:
    """A dynamic energy as printed: "not published" where the profile gives no energy per
    operation (Speck; "≥ 0 J" would be true and useless), else ``bound_mark`` + value."""
    if not getattr(r, "dynamic_published", True):
        return "not published"
    return bound_mark(r) + fmt.unit(joules, "J")


def bound_mark(r) -> str:
    """"≥ " before an energy of a lower-bound profile (e.g. Speck: no published energy per
    operation, so its dynamic energy is 0 J and only the static part is counted)."""
    return "≥ " if r.provenance == "lower-bound" else ""
