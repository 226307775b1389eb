"""The ``neurosparse`` command: ``demo``, ``report``, ``info``."""

from __future__ import annotations

import argparse
import json
import platform
import sys
import warnings
from dataclasses import asdict


def _cmd_demo(args: argparse.Namespace) -> int:
    from .demo import DemoConfig, run_demo

    cfg = DemoConfig(epochs=args.epochs, n_train=args.n_train, seed=args.seed)
    print(
        f"neurosparse demo: SyntheticDVS, {cfg.n_classes} motion directions, "
        f"{cfg.sensor}x{cfg.sensor} sensor, T={cfg.time_bins} bins of {cfg.dt_us} us, "
        f"{cfg.n_train} train / {cfg.n_test} test recordings"
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
    print(f"NEUROSPARSE_KERNELS={registry.kernel_mode()}")
    _import_ops()
    print(f"{'op':<24}{'device':<8}implementation")
    for op, dev, impl in registry.table():
        print(f"{op:<24}{dev:<8}{impl}")
    return 0


def _cmd_report(args: argparse.Namespace) -> int:
    from .energy import cli_report

    hardware = [h.strip() for h in args.hardware.split(",")] if args.hardware else None
    report = cli_report(args.target, args.data, hardware)
    report.print()
    if args.markdown:
        report.to_markdown(args.markdown)
    if args.json:
        report.to_json(args.json)
    if args.plot:
        report.plot(args.plot)
    return 0


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


def main(argv: list[str] | None = None) -> int:
    # a dependency's import-time deprecation notice, not something users can act on
    warnings.filterwarnings("ignore", message="`torch.jit.script` is deprecated")
    parser = argparse.ArgumentParser(prog="neurosparse", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("demo", help="train a small SNN on generated DVS data")
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--n-train", type=int, default=2048)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--json", help="also write the results to this JSON file")
    p.set_defaults(func=_cmd_demo)
    p = sub.add_parser("report", help="energy / latency report of a model on hardware profiles")
    p.add_argument("target", help="PATH.py:build_function returning a model or (model, input)")
    p.add_argument("--data", help="'example', synthetic-dvs[:B], nmnist:ROOT[:B], "
                   "synthetic:T,B,...[@rate], or a .pt/.npy file")
    p.add_argument("--hardware", help="comma-separated profile names or TOML/JSON paths "
                   "(default: all built-in profiles)")
    p.add_argument("--markdown", help="write the table as Markdown to this path")
    p.add_argument("--json", help="write the report as JSON to this path")
    p.add_argument("--plot", help="write a per-layer energy plot (PNG) to this path")
    p.set_defaults(func=_cmd_report)
    p = sub.add_parser("info", help="versions, threads, and which kernel each op uses")
    p.set_defaults(func=_cmd_info)
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
