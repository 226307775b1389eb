"""N-MNIST / N-Caltech101 ``.bin`` (Orchard et al. 2015): headerless 40-bit events."""

from __future__ import annotations

import numpy as np

from ..kernels.decode_nmnist import decode_nmnist
from ._source import WordSource, alloc, opts_left


class NMNISTSource(WordSource):
    fmt = "nmnist"
    word_size = 5
    ordered = True  # every real N-MNIST / N-Caltech101 recording is in time order
    # Without sensor_size, events are checked against the largest recording in this format
    # (N-Caltech101, at most 240 x 180); N-MNIST's 34 x 34 needs sensor_size=(34, 34) or
    # ns.data.NMNIST, which passes it.
    limit = (240, 180)
    limit_name = "N-Caltech101 (N-MNIST: 34 x 34, pass sensor_size=(34, 34))"

    def reset(self) -> None:
        self.t_offset = 0

    def decode(self, buf: np.ndarray, word0: int) -> np.ndarray:
        out = alloc(buf.shape[0] // 5)
        w, h = self.width_height
        k, self.t_offset = decode_nmnist(buf, word0, self.t_offset, w, h, out, self.report.stat)
        return out[:k]


def open_source(path, report, sensor_size, **opts) -> NMNISTSource:
    opts_left(opts, "nmnist")
    # The format has no header and no size: N-MNIST is 34 x 34, N-Caltech101 varies per file
    # up to 240 x 180 (the bound checked when sensor_size is not given).
    return NMNISTSource(path, report, sensor_size, {}, offset=0)
