"""``python -m neurosparse.train --config FILE.toml [--key value ...]``.

One process, or one rank each under ``torchrun``::

    python -m neurosparse.train --config examples/configs/synthetic.toml --max-steps 50
    torchrun --nproc_per_node=2 -m neurosparse.train --config examples/configs/nmnist.toml \\
        --data.root /data/NMNIST
    python -m neurosparse.train --config examples/configs/nmnist.toml --preprocess-only

Any config key can be set as a flag: ``--train.lr 0.01``, or by its bare name where
that is unique (``--max-steps``, ``--metrics-out``, ``--resume never``, ``--compile``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from ..errors import NeurosparseError
from .config import load_config


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="python -m neurosparse.train",
        description="Train a spiking classifier on event data (DDP under torchrun).",
        epilog="Every config key is also a flag: --section.key VALUE, or --key VALUE when the "
        "name is unique (e.g. --max-steps 100 --metrics-out m.json --resume never).",
    )
    ap.add_argument("--config", help="TOML config file (default: built-in defaults)")
    ap.add_argument(
        "--preprocess-only",
        action="store_true",
        help="fill the on-disk cache (data.cache_dir) in parallel, then exit",
    )
    ap.add_argument(
        "--print-config", action="store_true", help="print the resolved config as JSON and exit"
    )
    return ap


def _preprocess(cfg) -> None:
    from .data import build_data
    from .distributed import init_distributed, shutdown
    from .preprocess import fill_cache

    info = init_distributed("cpu")  # decoding is CPU work; gloo when under torchrun
    try:
        data = build_data(cfg.data, cfg.seed)
        for split, ds in (("train", data.train), ("test", data.test)):
            counts = fill_cache(ds, cfg.data.num_workers, info, cfg.progress)
            print(json.dumps({"rank": info.rank, "split": split, **counts}), flush=True)
    finally:
        shutdown(info)


def main(argv: list[str] | None = None) -> int:
    args, overrides = _parser().parse_known_args(argv)
    try:
        cfg = load_config(args.config, overrides)
        if args.print_config:
            print(json.dumps(cfg.to_dict(), indent=2))
        elif args.preprocess_only:
            _preprocess(cfg)
        else:
            from .loop import train

            m = train(cfg).metrics
            if os.environ.get("RANK", "0") == "0":
                summary = {k: m[k] for k in ("step", "epoch", "train_loss", "test_accuracy")}
                summary["samples_per_s"] = m["throughput"]["samples_per_s"]
                summary["metrics"] = str(cfg.metrics_path)
                print(json.dumps(summary), flush=True)
        return 0
    except NeurosparseError as e:
        print(f"neurosparse.train: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
