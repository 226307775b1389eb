"""Named input batches for the command line (``neurosparse report --data NAME``).

``synthetic-dvs[:B]``
    ``B`` (default 8) SyntheticDVS recordings as a spike tensor ``[20, B, 2, 32, 32]``:
    data the package generates itself, available everywhere.
``nmnist:ROOT[:B]``
    The first ``B`` test recordings of an N-MNIST folder (``ROOT/Test/<digit>/*.bin``,
    Tonic's layout also accepted) as ``[T, B, 2, 34, 34]`` with 1 ms bins.
"""

from __future__ import annotations

import os

import torch

from ..errors import ParameterError
from .collate import pad_time
from .datasets import NMNIST
from .synthetic import SyntheticDVS
from .transforms import ToSpikeTensor

#: Every form ``neurosparse report --data`` takes, in the words of its ``--help``; the
#: help text and the error for an unknown name are both made from this one list.
#: ``load_sample`` reads the named samples; the report command reads the others itself.
DATA_FORMS = (
    "'example' (the input the build function returns)",
    "'synthetic-dvs[:B]'",
    "'nmnist:ROOT[:B]'",
    "'synthetic:T,B,...[@rate]'",
    "a .pt/.pth/.npy/.npz file",
)
DATA_HELP = ", ".join(DATA_FORMS[:-1]) + ", or " + DATA_FORMS[-1]


def _batch(text: str, default: int) -> int:
    try:
        b = int(text) if text else default
    except ValueError:
        b = 0
    if b < 1:
        raise ParameterError(
            f"batch size in a sample name must be a positive integer, got {text!r}"
        )
    return b


def load_sample(name: str) -> torch.Tensor:
    """The spike tensor ``[T, B, C, H, W]`` for a sample ``name`` (see the module doc)."""
    kind, _, rest = name.partition(":")
    if kind == "synthetic-dvs":
        b = _batch(rest, 8)
        tf = ToSpikeTensor(sensor_size=(32, 32, 2), dt_us=5000, n_time_bins=20, start_time=0)
        ds = SyntheticDVS(b, n_classes=8, seed=1, transform=tf)
        return pad_time([ds[i] for i in range(b)])[0]
    if kind == "nmnist" and rest:
        root, _, b_text = rest.rpartition(":") if rest.count(":") else (rest, "", "")
        ds = NMNIST(root, train=False, transform=ToSpikeTensor(dt_us=1000))
        b = min(_batch(b_text, 8), len(ds))
        return pad_time([ds[i] for i in range(b)])[0]
    hint = ""
    if os.path.splitext(name)[1] or os.sep in name:  # meant as a file
        hint = ("; a file must hold a tensor saved as .pt/.pth (torch.save) or .npy/.npz, "
                "and an N-MNIST folder is read with 'nmnist:ROOT'")
    raise ParameterError(f"unknown sample {name!r}: --data takes {DATA_HELP}{hint}")


__all__ = ["load_sample"]
