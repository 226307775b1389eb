"""Hardware profiles: energy, latency and capacity constants as data, with citations.

Built-in profiles are the TOML files in ``neurosparse/energy/profiles/``. Users pass
their own as a dict, or as a path to a TOML / JSON / YAML file (YAML needs PyYAML) of
the same shape::

    name = "my-chip"
    provenance = "measured"          # measured | measured-quoted | pre-silicon | estimate
                                     # | lower-bound
    execution = "event"              # "event": work follows non-zero inputs; "dense": every tap
    [energy]                         # pJ per operation or byte; static power in mW
    synop_pj = 1.0                   # accumulate triggered by a binary event (× fan-out)
    mac_pj = 2.0                     # multiply-accumulate (graded input, or dense execution)
    neuron_update_pj = 5.0           # one neuron advanced one time step
    spike_pj = 0.5                   # one spike/event emitted and routed
    weight_byte_pj = 0.0             # per weight byte read (0 where included in synop_pj)
    state_byte_pj = 0.0              # per neuron-state byte read or written
    activation_byte_pj = 0.0         # per activation byte moved (dense execution)
    static_mw = 0.0                  # static/leakage power, charged for the latency
    [latency]
    model = "event"                  # "event" (cores in parallel, barrier per step) or "roofline"
    synop_ns = 1.0; mac_ns = 1.0; neuron_update_ns = 5.0    # per core ("event")
    sync_ns = 100.0; min_timestep_ns = 0.0; cores = 128; neurons_per_core = 1024
    # "roofline": macs_per_s, bytes_per_s, layer_overhead_ns, min_timestep_ns
    [capacity]                       # optional: neurons, synapses per chip
    [uncertain]                      # optional: key = [low, high] (or true) for unsure constants
    [sources]                        # citation per constant (required in built-in profiles)

Unknown keys, missing keys, wrong types and negative values raise
:class:`~neurosparse.errors.UnknownHardwareError` naming the key.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import tomllib

from ...errors import ParameterError, UnknownHardwareError

PROFILE_DIR = Path(__file__).parent

ENERGY_KEYS = (
    "synop_pj", "mac_pj", "neuron_update_pj", "spike_pj",
    "weight_byte_pj", "state_byte_pj", "activation_byte_pj", "static_mw",
)
LATENCY_KEYS = {
    "event": ("synop_ns", "mac_ns", "neuron_update_ns", "sync_ns", "min_timestep_ns",
              "cores", "neurons_per_core"),
    "roofline": ("macs_per_s", "bytes_per_s", "layer_overhead_ns", "min_timestep_ns"),
}
CAPACITY_KEYS = ("neurons", "synapses")
PROVENANCES = {
    "measured": "measured on silicon",
    "measured-quoted": "measured on silicon, figures quoted second-hand (not checked "
                       "against the primary source)",
    "pre-silicon": "pre-silicon (simulated) figures",
    "estimate": "first-principles estimate (circuit-level energies, not a chip)",
    "lower-bound": "lower bound: part of the energy is not modelled",
    "unspecified": "provenance not stated by the profile",
}
# Withdrawn built-in names and why (a clear error beats a silently different chip).
WITHDRAWN = {
    "loihi2": "the 'loihi2' profile was withdrawn: no per-operation energy or timing of "
              "Loihi 2 has been published (it held Loihi 1 pre-silicon numbers). 'loihi' has "
              "Loihi 1's pre-silicon figures (Davies et al. 2018); for Loihi 2 pass a profile "
              "of your own measured numbers (a dict or a TOML path)",
}
EXECUTIONS = ("event", "dense")
_TOP_REQUIRED = ("name", "execution", "energy", "latency")
_TOP_OPTIONAL = ("schema_version", "title", "notes", "capacity", "uncertain", "sources",
                 "provenance")


@dataclass(frozen=True)
class HardwareProfile:
    """Validated constants of one piece of hardware (see module docstring for the keys)."""

    name: str
    execution: str
    energy: dict[str, float]
    latency: dict[str, Any]
    capacity: dict[str, float] = field(default_factory=dict)
    uncertain: dict[str, tuple[float, float] | None] = field(default_factory=dict)
    sources: dict[str, str] = field(default_factory=dict)
    title: str = ""
    notes: str = ""
    origin: str = "dict"
    provenance: str = "unspecified"

    @property
    def cores(self) -> int:
        """Cores per chip of an event-model profile (1 for roofline profiles)."""
        return int(self.latency.get("cores", 1))

    @property
    def maps_cores(self) -> bool:
        """Whether the event model's core size is real: a profile whose ``neurons_per_core``
        source says "not modelled" (SpiNNaker 2) keeps placeholder sizes that map nothing."""
        return self.latency.get("model") == "event" and not str(
            self.sources.get("neurons_per_core", "")).startswith("not modelled")

    @property
    def synapses_per_core(self) -> float | None:
        """Synapse capacity per core, from [capacity] synapses / cores, if both are known."""
        syn = self.capacity.get("synapses")
        return syn / self.cores if syn and self.latency.get("model") == "event" else None

    def value(self, key: str) -> float:
        """A constant from [energy] or [latency]."""
        if key in self.energy:
            return float(self.energy[key])
        return float(self.latency[key])

    def bounds(self, key: str) -> tuple[float, float]:
        """(low, high) of a constant: its range if uncertain with one, else (value, value)."""
        rng = self.uncertain.get(key)
        v = self.value(key)
        return (float(rng[0]), float(rng[1])) if rng else (v, v)

    def with_execution(self, execution: str) -> HardwareProfile:
        if execution not in EXECUTIONS:
            raise ParameterError(f"execution must be one of {list(EXECUTIONS)}, got {execution!r}")
        return replace(self, execution=execution)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name, "title": self.title, "execution": self.execution,
            "energy": dict(self.energy), "latency": dict(self.latency),
            "capacity": dict(self.capacity),
            "uncertain": {k: (list(v) if v else True) for k, v in self.uncertain.items()},
            "sources": dict(self.sources), "notes": self.notes,
            "provenance": self.provenance,
        }


def list_profiles() -> list[str]:
    """Names of the built-in hardware profiles."""
    return sorted(p.stem for p in PROFILE_DIR.glob("*.toml"))


def load_profile(spec: str | dict | HardwareProfile | Path) -> HardwareProfile:
    """Load a hardware profile.

    Parameters
    ----------
    spec : str, dict, Path or HardwareProfile
        A built-in name (see :func:`list_profiles`), optionally suffixed ``":event"`` or
        ``":dense"`` to override the execution mode; a path to a TOML/JSON/YAML file; a
        dict with the profile's keys; or an already loaded profile.
    """
    if isinstance(spec, HardwareProfile):
        return spec
    if isinstance(spec, dict):
        return validate_profile(spec, origin="dict")
    if isinstance(spec, Path) or (isinstance(spec, str) and _looks_like_path(spec)):
        return validate_profile(_read_file(Path(spec)), origin=str(spec))
    if not isinstance(spec, str):
        raise UnknownHardwareError(
            f"hardware must be a profile name, dict, file path or HardwareProfile, "
            f"got {type(spec).__name__}"
        )
    name, _, mode = spec.partition(":")
    path = PROFILE_DIR / f"{name}.toml"
    if name in WITHDRAWN:
        raise UnknownHardwareError(
            f"{WITHDRAWN[name]}. Known profiles: {', '.join(list_profiles())}")
    if not path.is_file():
        raise UnknownHardwareError(
            f"unknown hardware profile {name!r}; known profiles: {', '.join(list_profiles())}. "
            "Pass a dict or the path of a TOML or JSON file (YAML with PyYAML installed) for "
            "your own hardware."
        )
    profile = validate_profile(_read_file(path), origin=str(path))
    if mode:
        if mode not in EXECUTIONS:
            raise UnknownHardwareError(
                f"hardware {spec!r}: execution suffix must be ':event' or ':dense', got {mode!r}"
            )
        profile = profile.with_execution(mode)
    return profile


def _looks_like_path(s: str) -> bool:
    return s.endswith((".toml", ".json", ".yaml", ".yml")) or "/" in s or "\\" in s


def _read_file(path: Path) -> dict:
    if not path.is_file():
        raise UnknownHardwareError(f"hardware profile file {str(path)!r} does not exist")
    suffix = path.suffix.lower()
    try:
        if suffix == ".toml":
            return tomllib.loads(path.read_text())
        if suffix == ".json":
            return json.loads(path.read_text())
        if suffix in (".yaml", ".yml"):
            try:
                import yaml
            except ImportError as exc:
                raise UnknownHardwareError(
                    f"reading {str(path)!r} needs PyYAML (pip install pyyaml); "
                    "or write the profile as TOML or JSON"
                ) from exc
            data = yaml.safe_load(path.read_text())
            if not isinstance(data, dict):
                raise UnknownHardwareError(f"{str(path)!r} must hold a mapping at top level")
            return data
    except (tomllib.TOMLDecodeError, json.JSONDecodeError) as exc:
        raise UnknownHardwareError(f"cannot parse hardware profile {str(path)!r}: {exc}") from exc
    raise UnknownHardwareError(
        f"hardware profile file {str(path)!r} must end in .toml, .json, .yaml or .yml"
    )


def _fail(where: str, msg: str):
    raise UnknownHardwareError(f"hardware profile {where}: {msg}")


def _check_keys(where: str, table: str, got: dict, required, optional=()) -> None:
    if not isinstance(got, dict):
        _fail(where, f"[{table}] must be a table/dict, got {type(got).__name__}")
    unknown = sorted(set(got) - set(required) - set(optional))
    if unknown:
        _fail(where, f"unknown key(s) {unknown} in [{table}]; allowed: "
                     f"{sorted(set(required) | set(optional))}")
    missing = [k for k in required if k not in got]
    if missing:
        _fail(where, f"missing key(s) {missing} in [{table}]")


def _number(where: str, key: str, v: Any) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        _fail(where, f"{key} must be a number, got {v!r}")
    if not math.isfinite(v):
        _fail(where, f"{key} must be finite, got {v!r}")
    if v < 0:
        _fail(where, f"{key} must be >= 0, got {v!r}")
    return float(v)


def validate_profile(data: dict, origin: str = "dict") -> HardwareProfile:
    """Check a profile mapping and turn it into a :class:`HardwareProfile`."""
    where = repr(data.get("name", origin)) if isinstance(data, dict) else repr(origin)
    _check_keys(where, "top level", data, _TOP_REQUIRED, _TOP_OPTIONAL)
    name = data["name"]
    if not isinstance(name, str) or not name or ":" in name:
        _fail(where, f"name must be a non-empty string without ':', got {name!r}")
    provenance = data.get("provenance", "unspecified")
    if provenance not in PROVENANCES:
        _fail(where, f"provenance must be one of {list(PROVENANCES)}, got {provenance!r}")
    execution = data["execution"]
    if execution not in EXECUTIONS:
        _fail(where, f"execution must be one of {list(EXECUTIONS)}, got {execution!r}")
    _check_keys(where, "energy", data["energy"], ENERGY_KEYS)
    energy = {k: _number(where, f"energy.{k}", data["energy"][k]) for k in ENERGY_KEYS}
    lat = data["latency"]
    if not isinstance(lat, dict) or lat.get("model") not in LATENCY_KEYS:
        got = lat.get("model") if isinstance(lat, dict) else lat
        _fail(where, f"latency.model must be one of {list(LATENCY_KEYS)}, got {got!r}")
    keys = LATENCY_KEYS[lat["model"]]
    _check_keys(where, "latency", lat, ("model",) + keys)
    latency: dict[str, Any] = {"model": lat["model"]}
    latency.update({k: _number(where, f"latency.{k}", lat[k]) for k in keys})
    for k in ("cores", "neurons_per_core"):
        if k in latency and latency[k] < 1:
            _fail(where, f"latency.{k} must be >= 1, got {latency[k]!r}")
    if lat["model"] == "roofline":
        for k in ("macs_per_s", "bytes_per_s"):
            if latency[k] <= 0:
                _fail(where, f"latency.{k} must be > 0, got {latency[k]!r}")
    cap_in = data.get("capacity", {})
    _check_keys(where, "capacity", cap_in, (), CAPACITY_KEYS)
    capacity = {k: _number(where, f"capacity.{k}", v) for k, v in cap_in.items()}
    constants = set(energy) | set(latency) - {"model"} | set(capacity)
    uncertain = _uncertain(where, data.get("uncertain", {}), energy, latency, constants)
    sources = data.get("sources", {})
    _check_keys(where, "sources", sources, (), sorted(constants))
    for k, v in sources.items():
        if not isinstance(v, str) or not v.strip():
            _fail(where, f"sources.{k} must be a non-empty string")
    return HardwareProfile(
        name=name, execution=execution, energy=energy, latency=latency, capacity=capacity,
        uncertain=uncertain, sources=dict(sources), title=str(data.get("title", name)),
        notes=str(data.get("notes", "")), origin=origin, provenance=provenance,
    )


def _uncertain(where, table, energy, latency, constants):
    if not isinstance(table, dict):
        _fail(where, f"[uncertain] must be a table/dict, got {type(table).__name__}")
    out: dict[str, tuple[float, float] | None] = {}
    for k, v in table.items():
        if k not in constants:
            _fail(where, f"unknown key {k!r} in [uncertain]; it must name a constant")
        if v is True:
            out[k] = None
            continue
        if not (isinstance(v, (list, tuple)) and len(v) == 2):
            _fail(where, f"uncertain.{k} must be [low, high] or true, got {v!r}")
        lo, hi = (_number(where, f"uncertain.{k}", x) for x in v)
        value = {**energy, **latency}.get(k)
        if lo > hi or (value is not None and not lo <= value <= hi):
            _fail(where, f"uncertain.{k} = [{lo}, {hi}] must satisfy "
                         f"low <= value ({value}) <= high")
        out[k] = (lo, hi)
    return out


__all__ = [
    "HardwareProfile", "list_profiles", "load_profile", "validate_profile",
    "ENERGY_KEYS", "LATENCY_KEYS", "EXECUTIONS", "PROVENANCES",
]
