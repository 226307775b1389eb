"""Training configuration: typed dataclasses filled from a TOML file and ``--key value`` flags.

A config file has top-level run settings and three tables, ``[data]``, ``[model]`` and
``[train]`` (see ``examples/configs/*.toml``). Every key has a type and a default; an
unknown key, a value of the wrong type or out of range raises
:class:`~neurosparse.errors.ParameterError` naming the key (``data.batch_size``), so a
typo never silently falls back to a default.

Command-line overrides use the dotted name (``--train.lr 0.01``) or, where the name is
unique across tables, the bare name with dashes or underscores (``--max-steps 100``).
Flag values are parsed by the key's type (``--data.sensor 128,128,2``,
``--compile`` alone means ``true``).
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import os
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ParameterError

try:  # Python >= 3.11
    import tomllib
except ModuleNotFoundError:  # pragma: no cover - Python 3.10
    try:
        import tomli as tomllib  # type: ignore[no-redef]
    except ModuleNotFoundError:
        tomllib = None  # type: ignore[assignment]


@dataclass
class DataConfig:
    """``[data]``: which recordings, how they become spike tensors, how they are batched."""

    kind: str = "synthetic"  # synthetic | nmnist | random
    root: str = ""  # nmnist: folder holding Train/ and Test/
    n_train: int = 2048  # synthetic, random
    n_test: int = 512  # synthetic, random
    n_classes: int = 8  # synthetic, random (nmnist has 10)
    sensor: list[int] = field(default_factory=lambda: [32, 32, 2])  # (W, H, P); not nmnist
    time_bins: int = 20  # T
    dt_us: int = 5000  # bin width; synthetic recordings last time_bins * dt_us
    spike_rate: float = 0.02  # random: mean spike probability per pixel and step
    pool_size: int = 64  # random: distinct samples kept on the device
    batch_size: int = 32  # per process (per GPU)
    num_workers: int = 0  # DataLoader workers per process
    cache_dir: str = ""  # "" = no on-disk cache of transformed samples


@dataclass
class ModelConfig:
    """``[model]``: the spiking network."""

    arch: str = "mlp"  # mlp | conv
    layer: str = "dense"  # dense (torch layers) | event (neurosparse.layers, when importable)
    hidden: int = 128  # mlp
    channels: list[int] = field(default_factory=lambda: [32, 64])  # conv
    pool: int = 8  # conv: adaptive average pool to pool x pool before the readout
    beta: float = 0.9
    threshold: float = 1.0
    surrogate_slope: float = 10.0  # FastSigmoid slope


@dataclass
class OptimConfig:
    """``[train]``: optimisation and the loop."""

    epochs: int = 5
    max_steps: int = 0  # stop after this many optimizer steps in total; 0 = no limit
    optimizer: str = "adam"  # adam | sgd
    lr: float = 2e-3
    momentum: float = 0.9  # sgd
    weight_decay: float = 0.0
    grad_clip: float = 0.0  # max gradient norm; 0 = off
    warmup_steps: int = 5  # steps left out of the throughput figure
    log_every: int = 10
    eval: bool = True  # test accuracy after every epoch
    checkpoint_every: int = 0  # steps; 0 = at the end of every epoch and of the run only


@dataclass
class Config:
    """The whole run: top-level settings plus the ``data``, ``model`` and ``train`` tables."""

    seed: int = 0
    device: str = "auto"  # auto | cpu | cuda
    amp: str = "auto"  # auto (bf16 on CUDA, off on CPU) | bf16 | off
    compile: bool = False  # torch.compile the model (falls back to eager with a warning)
    compile_backend: str = "inductor"
    threads: int = 0  # torch + Numba threads per process; 0 = torch as is, Numba cores/procs
    output_dir: str = "runs/default"
    checkpoint_dir: str = ""  # "" = <output_dir>/checkpoints
    resume: str = "auto"  # auto (resume from <checkpoint_dir>/last.pt if present) | never | path
    metrics_out: str = ""  # "" = <output_dir>/metrics.json
    progress: bool = True  # tqdm bar on rank 0
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: OptimConfig = field(default_factory=OptimConfig)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @property
    def checkpoint_path(self) -> Path:
        return Path(self.checkpoint_dir or Path(self.output_dir) / "checkpoints") / "last.pt"

    @property
    def metrics_path(self) -> Path:
        return Path(self.metrics_out or Path(self.output_dir) / "metrics.json")


SECTIONS = ("data", "model", "train")

CHOICES = {
    "device": ("auto", "cpu", "cuda"),
    "amp": ("auto", "bf16", "off"),
    "data.kind": ("synthetic", "nmnist", "random"),
    "model.arch": ("mlp", "conv"),
    "model.layer": ("dense", "event"),
    "train.optimizer": ("adam", "sgd"),
}

# (lowest allowed, highest allowed); None = unbounded
RANGES = {
    **dict.fromkeys(("seed", "threads", "data.num_workers", "train.max_steps", "train.warmup_steps",
                     "train.checkpoint_every"), (0, None)),
    **dict.fromkeys(("data.n_train", "data.n_test", "data.time_bins", "data.dt_us",
                     "data.pool_size", "data.batch_size", "model.hidden", "model.pool",
                     "train.epochs", "train.log_every"), (1, None)),
    "data.n_classes": (2, None),
    **dict.fromkeys(("data.spike_rate", "model.beta", "train.momentum"), (0.0, 1.0)),
    **dict.fromkeys(("model.threshold", "model.surrogate_slope", "train.lr",
                     "train.weight_decay", "train.grad_clip"), (0.0, None)),
}


def _fields(cls: type) -> dict[str, Any]:
    """``name -> type`` of a config dataclass, with the annotations resolved."""
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls) if f.name not in SECTIONS}


def _type_name(tp: Any) -> str:
    return "list of int" if typing.get_origin(tp) is list else tp.__name__


def _check_type(key: str, value: Any, tp: Any) -> Any:
    """``value`` as type ``tp`` (an int is accepted for a float), else ParameterError."""
    if typing.get_origin(tp) is list:
        ok = isinstance(value, (list, tuple)) and all(
            isinstance(v, int) and not isinstance(v, bool) for v in value
        )
        if ok:
            return [int(v) for v in value]
    elif tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    elif tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif isinstance(value, tp):
        return value
    raise ParameterError(
        f"config key {key!r} must be {_type_name(tp)}, got {value!r} ({type(value).__name__})"
    )


def _parse_flag(key: str, text: str, tp: Any) -> Any:
    """A command-line string as the key's type."""
    try:
        if typing.get_origin(tp) is list:
            return [int(v) for v in text.strip("[]() ").split(",") if v.strip()]
        if tp is bool:
            low = text.lower()
            if low in ("1", "true", "yes", "on"):
                return True
            if low in ("0", "false", "no", "off"):
                return False
            raise ValueError(text)
        return tp(text)
    except ValueError:
        raise ParameterError(
            f"flag --{key} must be {_type_name(tp)}, got {text!r}"
        ) from None


def _unknown(key: str, known: list[str], where: str) -> ParameterError:
    close = difflib.get_close_matches(key, known, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else f"; known keys: {', '.join(known)}"
    return ParameterError(f"unknown config key {key!r}{where}{hint}")


def all_keys() -> dict[str, Any]:
    """Every dotted key of :class:`Config` and its type (``data.batch_size -> int``)."""
    keys = dict(_fields(Config))
    for sec, cls in zip(SECTIONS, (DataConfig, ModelConfig, OptimConfig)):
        keys.update({f"{sec}.{k}": tp for k, tp in _fields(cls).items()})
    return keys


def _set(cfg: Config, key: str, value: Any) -> None:
    head, _, tail = key.rpartition(".")
    setattr(getattr(cfg, head) if head else cfg, tail, value)


def config_from_dict(tree: dict[str, Any], where: str = "") -> Config:
    """A :class:`Config` from a nested dict (a parsed TOML file), checking every key."""
    keys = all_keys()
    cfg = Config()
    for name, value in tree.items():
        if name in SECTIONS:
            if not isinstance(value, dict):
                raise ParameterError(f"config key {name!r}{where} must be a table [{name}]")
            for sub, v in value.items():
                key = f"{name}.{sub}"
                if key not in keys:
                    raise _unknown(key, [k for k in keys if k.startswith(name + ".")], where)
                _set(cfg, key, _check_type(key, v, keys[key]))
        elif name in keys:
            _set(cfg, name, _check_type(name, value, keys[name]))
        else:
            raise _unknown(name, [k for k in keys if "." not in k] + list(SECTIONS), where)
    return cfg


def resolve_flag(name: str) -> str:
    """The dotted key a command-line flag names (``max-steps`` -> ``train.max_steps``)."""
    keys = all_keys()
    name = name.replace("-", "_")
    if name in keys:
        return name
    matches = [k for k in keys if k.rpartition(".")[2] == name]
    if len(matches) == 1:
        return matches[0]
    if len(matches) > 1:
        raise ParameterError(
            f"flag --{name} is ambiguous: use one of {', '.join('--' + m for m in matches)}"
        )
    raise _unknown(name, list(keys), " (command-line flag)")


def apply_overrides(cfg: Config, args: list[str]) -> Config:
    """Apply ``["--key", "value", "--flag", "--key=value", ...]`` to ``cfg`` in place."""
    keys = all_keys()
    i = 0
    while i < len(args):
        arg = args[i]
        if not arg.startswith("--"):
            raise ParameterError(f"expected a --key flag, got {arg!r}")
        name, eq, text = arg[2:].partition("=")
        key = resolve_flag(name)
        if not eq:
            nxt = args[i + 1] if i + 1 < len(args) else None
            if keys[key] is bool and (nxt is None or nxt.startswith("--")):
                text = "true"  # a bare boolean flag switches it on
            elif nxt is None:
                raise ParameterError(f"flag --{name} needs a value")
            else:
                text, i = nxt, i + 1
        _set(cfg, key, _parse_flag(key, text, keys[key]))
        i += 1
    return cfg


def validate(cfg: Config) -> Config:
    """Check choices and ranges of every key; raise ParameterError naming the first bad one."""
    for key, choices in CHOICES.items():
        value = _get(cfg, key)
        if value not in choices:
            raise ParameterError(
                f"config key {key!r} must be one of {list(choices)}, got {value!r}"
            )
    for key, tp in all_keys().items():
        # TOML and float() both accept nan / inf, and a NaN passes every range check below
        # (all comparisons with it are false): model.beta = nan would train on NaNs.
        if tp is float and not math.isfinite(_get(cfg, key)):
            raise ParameterError(f"config key {key!r} must be a finite number, "
                                 f"got {_get(cfg, key)!r}")  # fmt: skip
    for key, (lo, hi) in RANGES.items():
        value = _get(cfg, key)
        if (lo is not None and value < lo) or (hi is not None and value > hi):
            bounds = f">= {lo}" if hi is None else f"in [{lo}, {hi}]"
            raise ParameterError(f"config key {key!r} must be {bounds}, got {value!r}")
    if len(cfg.data.sensor) != 3 or min(cfg.data.sensor) < 1:
        raise ParameterError(
            f"config key 'data.sensor' must be [W, H, P] with positive entries, "
            f"got {cfg.data.sensor!r}"
        )
    if len(cfg.model.channels) != 2 or min(cfg.model.channels) < 1:
        raise ParameterError(
            f"config key 'model.channels' must be two positive ints (conv1, conv2), "
            f"got {cfg.model.channels!r}"
        )
    if cfg.data.kind == "nmnist" and not cfg.data.root:
        raise ParameterError(
            "config key 'data.root' must name the N-MNIST folder (with Train/ and Test/) "
            "when data.kind = 'nmnist'"
        )
    return cfg


def _get(cfg: Config, key: str) -> Any:
    head, _, tail = key.rpartition(".")
    return getattr(getattr(cfg, head) if head else cfg, tail)


def load_config(path: str | os.PathLike | None = None, overrides: list[str] = ()) -> Config:
    """Read a TOML config (defaults when ``path`` is None), apply flags, validate.

    Raises
    ------
    ParameterError
        Unknown key, wrong type, value out of range; the message names the key.
    FileNotFoundError
        ``path`` does not exist.
    """
    if path is None:
        cfg = Config()
    else:
        if tomllib is None:  # pragma: no cover - Python 3.10 without tomli
            raise ParameterError("reading TOML configs on Python 3.10 needs `pip install tomli`")
        text = Path(path).read_text()
        try:
            tree = tomllib.loads(text)
        except tomllib.TOMLDecodeError as e:
            raise ParameterError(f"config file {str(path)!r} is not valid TOML: {e}") from None
        cfg = config_from_dict(tree, f" in {str(path)!r}")
    apply_overrides(cfg, list(overrides))
    return validate(cfg)


__all__ = [
    "Config",
    "DataConfig",
    "ModelConfig",
    "OptimConfig",
    "load_config",
]  # public API (re-exported by neurosparse.train); the steps of load_config
# (config_from_dict, apply_overrides, validate) are imported from here by name
