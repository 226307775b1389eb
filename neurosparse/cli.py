"""The ``neurosparse`` command: ``demo``, ``report``, ``bench``, ``info``.

A user error (a bad argument, a missing file, an invalid setting: any
``neurosparse.errors.NeurosparseError`` or a missing file) prints one line and exits
with status 2; ``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import warnings
from dataclasses import asdict

from .errors import NeurosparseError

WIDTH = 100  # the default report table fits this many columns


def _cmd_demo(args: argparse.Namespace) -> int:
    from .demo import DemoConfig, run_demo

    cfg = DemoConfig(epochs=args.epochs, n_train=args.n_train, seed=args.seed)
    print(
        f"neurosparse demo: SyntheticDVS, {cfg.n_classes} motion directions, "
        f"{cfg.sensor}x{cfg.sensor} sensor, T={cfg.time_bins} bins of {cfg.dt_us} us, "
        f"{cfg.n_train} train / {cfg.n_test} test recordings",
        flush=True,  # before the data generation starts, also when stdout is a pipe
    )
    res = run_demo(cfg, progress=not args.no_progress)
    print(f"input spike rate      {res.input_rate:.3f} per pixel per step")
    for name, rate in res.spike_rates.items():
        print(f"spike rate {name:<10} {rate:.3f} per neuron per step")
    print(f"train accuracy        {res.train_accuracy:.3f}")
    print(f"test accuracy         {res.accuracy:.3f}  (chance {res.chance:.3f})")
    print(f"synaptic ops / inference {res.synops_per_inference:,.0f} "
          f"(a dense network: {res.dense_macs_per_inference:,.0f} MACs)")
    print("\n".join(res.energy_lines))
    print(f"time                  {res.seconds:.1f} s")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(asdict(res), f, indent=2)
    return 0


def _cmd_bench(args: argparse.Namespace) -> int:
    from .bench import run_bench

    res = run_bench(args.batch, args.in_features, args.out_features, args.rate, args.device,
                    args.rounds)  # fmt: skip
    print(f"neurosparse bench: Linear {res.in_features} -> {res.out_features}, batch "
          f"{res.batch}, spike rate {res.rate:g} ({res.events} events), {res.device}; "
          f"µs per call, {res.rounds} round-robin rounds; every output checked against the "
          "fp32 product first; the CSR row includes to_sparse_csr() of the input")  # fmt: skip
    print(res.table())
    print(f"EventLinear auto took the {res.auto_path} path")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(res.to_dict(), f, indent=2)
    return 0


def _cmd_info(args: argparse.Namespace) -> int:
    import numba
    import numpy
    import torch

    from . import __version__
    from .ops import (
        lif_sequence,  # noqa: F401  (registers its kernel)
        registry,
    )

    print(f"neurosparse {__version__}")
    print(f"python      {platform.python_version()} ({platform.machine()})")
    print(f"torch       {torch.__version__}  threads={torch.get_num_threads()}")
    print(f"numpy       {numpy.__version__}")
    print(f"numba       {numba.__version__}  threads={numba.config.NUMBA_NUM_THREADS} "
          f"layer={numba.threading_layer() if _numba_ran() else 'not started'}")
    for mod in ("snntorch", "norse", "tonic", "nir"):
        try:
            m = __import__(mod)
            print(f"{mod:<11} {getattr(m, '__version__', '?')}")
        except Exception:
            print(f"{mod:<11} not installed")
    print(f"CUDA        torch: {torch.cuda.is_available()}  "
          f"numba.cuda: {registry.cuda_kernels_available()}")
    if torch.cuda.is_available() and registry.cuda_kernels_available():
        from .ops.cuda_env import launcher

        print(f"CUDA launch {launcher()}")
    try:
        print(f"NEUROSPARSE_KERNELS={registry.kernel_mode()}")
    except NeurosparseError as exc:  # report it: info is where a user looks for it
        print(f"NEUROSPARSE_KERNELS is invalid: {exc}")
        return 0
    _import_ops()
    print(f"{'op':<24}{'device':<8}implementation")
    for op, dev, impl in registry.table():
        print(f"{op:<24}{dev:<8}{impl}")
    return 0


def _cmd_report(args: argparse.Namespace) -> int:
    from .energy import cli_report

    hardware = [h.strip() for h in args.hardware.split(",")] if args.hardware else None
    report = cli_report(args.target, args.data, hardware)
    if args.format == "json":
        print(report.to_json())
    elif args.format == "markdown":
        print(report.to_markdown())
    elif args.format == "wide":
        print(report)
    else:
        print(narrow_table(report, WIDTH))
    if args.markdown:
        report.to_markdown(args.markdown)
    if args.json:
        report.to_json(args.json)
    if args.plot:
        report.plot(args.plot)
    return 0


def _split_columns(header: list[str], rows: list[list[str]], width: int) -> list[str]:
    """Plain tables of at most ``width`` columns: the columns that do not fit go to a
    further table that repeats the first (row-name) column. Nothing is abbreviated."""
    from .energy._format import text_table

    cols = list(range(1, len(header)))
    tables = []
    while cols:
        take = [cols.pop(0)]
        while cols:
            trial = text_table([header[i] for i in [0, *take, cols[0]]],
                               [[r[i] for i in [0, *take, cols[0]]] for r in rows])
            if max(len(line) for line in trial.splitlines()) > width:
                break
            take.append(cols.pop(0))
        tables.append(text_table([header[i] for i in [0, *take]],
                                 [[r[i] for i in [0, *take]] for r in rows]))
    return tables


def narrow_table(report, width: int = WIDTH) -> str:
    """The report as plain-text tables no wider than ``width`` characters (the wide
    one-table layout is ``str(report)`` / ``--format wide``)."""
    import textwrap

    layer_h, layer_r = report._layer_rows(energy_cols=False)
    energy_h, energy_r = report._energy_rows()
    hw_h, hw_r = report._hardware_rows()
    parts = [textwrap.fill(report._summary_line(), width)]
    for title, (h, r) in (("Per layer (per inference)", (layer_h, layer_r)),
                          ("Dynamic energy per layer", (energy_h, energy_r)),
                          ("Per hardware", (hw_h, hw_r))):
        parts += ["", title] + [t for tab in _split_columns(h, r, width) for t in (tab, "")][:-1]
    parts += report.footer_lines()
    return "\n".join(parts)


def _numba_ran() -> bool:
    try:
        import numba

        numba.threading_layer()
        return True
    except Exception:
        return False


def _import_ops() -> None:
    """Import every ops module so that each registers its kernels."""
    import importlib
    import pkgutil

    from . import ops

    for info in pkgutil.iter_modules(ops.__path__):
        if info.name != "registry":
            importlib.import_module(f"{ops.__name__}.{info.name}")


def _version() -> str:
    from . import __version__

    return f"neurosparse {__version__}"


def _positive_int(text: str) -> int:
    """argparse type: an int >= 1 (``--epochs -1`` used to train 0 epochs and report an
    untrained network as the demo's result, with exit status 0)."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text!r}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="neurosparse", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=_version())
    parser.add_argument("--debug", action="store_true",
                        help="show the full traceback of an error instead of one line")
    from .data.samples import DATA_HELP  # one list: the help and the "unknown" error

    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("demo", help="train a small SNN on generated DVS data")
    p.add_argument("--epochs", type=_positive_int, default=5, help="training epochs (default 5)")
    p.add_argument("--n-train", type=_positive_int, default=2048,
                   help="generated training recordings (default 2048; 512 test recordings)")
    p.add_argument("--seed", type=int, default=0, help="seed of the data and the weights")
    p.add_argument("--no-progress", action="store_true",
                   help="no progress bars (for logs and CI)")
    p.add_argument("--json", help="also write the results to this JSON file")
    p.set_defaults(func=_cmd_demo)
    p = sub.add_parser("report", help="energy / latency report of a model on hardware profiles")
    p.add_argument("target", help="PATH.py:build_function returning a model or (model, input)")
    p.add_argument("--data", help=DATA_HELP)
    p.add_argument("--hardware", help="comma-separated profile names or TOML/JSON paths "
                   "(default: all built-in profiles)")
    p.add_argument("--format", choices=["table", "wide", "json", "markdown"], default="table",
                   help=f"what is printed: tables at most {WIDTH} columns wide (default), "
                        "the wide one-table layout, JSON, or Markdown")
    p.add_argument("--markdown", help="write the table as Markdown to this path")
    p.add_argument("--json", help="write the report as JSON to this path")
    p.add_argument("--plot", help="write a per-layer energy plot (PNG) to this path")
    p.set_defaults(func=_cmd_report)
    p = sub.add_parser("bench", help="time EventLinear against dense and torch.sparse on "
                       "your layer size and spike rate, on this machine")
    p.add_argument("--batch", type=_positive_int, default=1, help="rows per call (default 1)")
    p.add_argument("--in-features", type=_positive_int, default=4096, help="default 4096")
    p.add_argument("--out-features", type=_positive_int, default=4096, help="default 4096")
    p.add_argument("--rate", type=float, default=0.01,
                   help="fraction of inputs that spike per row (default 0.01)")
    p.add_argument("--device", choices=["cpu", "cuda"], default="cpu",
                   help="where the layer runs (default cpu)")
    p.add_argument("--rounds", type=_positive_int, default=7,
                   help="round-robin timing rounds (default 7)")
    p.add_argument("--json", help="also write the timings to this JSON file")
    p.set_defaults(func=_cmd_bench)
    p = sub.add_parser("info", help="versions, threads, and which kernel each op uses")
    p.set_defaults(func=_cmd_info)
    return parser


def main(argv: list[str] | None = None) -> int:
    # a dependency's import-time deprecation notice, not something users can act on
    warnings.filterwarnings("ignore", message="`torch.jit.script` is deprecated")
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (NeurosparseError, FileNotFoundError) as exc:
        if args.debug:
            raise
        print(f"neurosparse {args.command}: error: {exc} (--debug shows where)",
              file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
