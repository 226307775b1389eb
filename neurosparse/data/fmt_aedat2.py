"""AEDAT 2.0 (jAER): ``#`` header lines, then 8-byte big-endian address/timestamp words.

The header ends at ``#End Of ASCII Header`` or, in files without that line, before the
first line that is not printable ``#`` text: a DAVIS word with y = 140..143 starts with
``#`` (0x23), so "starts with ``#``" alone would take events for header. A file that
ends inside a header line is a ``TruncatedFileError`` (see ``header_lines``); a DVS128
address with bits 16-30 set is a corrupt word (``kernels/decode_aedat2.py``).
"""

from __future__ import annotations

import warnings

import numpy as np

from ..errors import UnknownFormatError
from ..kernels._decode_common import new_wrap_state
from ..kernels.decode_aedat2 import LAYOUT_DAVIS, LAYOUT_DVS128, decode_aedat2
from ._source import WordSource, alloc, header_lines, opts_left

MAGIC = b"#!AER-DAT2.0"
#: jAER's last header line (``write_aedat2`` writes it too). Older jAER files lack it: their
#: header then ends at the first line that is not ``#`` text (see ``header_lines``).
END = b"#End Of ASCII Header"
LAYOUTS = {"dvs128": LAYOUT_DVS128, "davis": LAYOUT_DAVIS}

# Chip class name fragment (lower case) -> (layout, sensor size). Most specific first.
CHIPS = (
    ("dvs128", "dvs128", (128, 128)),
    ("tmpdiff128", "dvs128", (128, 128)),
    ("davis240", "davis", (240, 180)),
    ("davis346", "davis", (346, 260)),
    ("davis640", "davis", (640, 480)),
    ("davis", "davis", None),
)


def chip_layout(chip: str) -> tuple[str | None, tuple[int, int] | None]:
    low = chip.lower()
    for frag, layout, size in CHIPS:
        if frag in low:
            return layout, size
    return None, None


class AEDAT2Source(WordSource):
    fmt = "aedat2"
    ordered = True  # jAER logs in time order (all real files here are, every word)
    word_size = 8

    def __init__(self, path, report, sensor_size, meta, offset, layout: int) -> None:
        super().__init__(path, report, sensor_size, meta, offset)
        self.layout = layout

    def reset(self) -> None:
        self.state = new_wrap_state()

    def decode(self, buf: np.ndarray, word0: int) -> np.ndarray:
        out = alloc(buf.shape[0] // 8)
        w, h = self.width_height
        words = buf.view("<u4")  # big-endian on disk: the kernel swaps the bytes
        k = decode_aedat2(words, word0, self.layout, self.state, w, h, out, self.report.stat)
        return out[:k]

    def read(self) -> np.ndarray:
        ev = super().read()
        self.meta["skipped_non_dvs_words"] = self.report.other
        return ev


def open_source(path, report, sensor_size, layout: str | None = None, **opts) -> AEDAT2Source:
    """``layout``: ``"dvs128"`` or ``"davis"``; default from the header's ``# AEChip:`` line."""
    opts_left(opts, "aedat2")
    lines, offset = header_lines(path, b"#", stop=END)
    if not lines or not lines[0].startswith(MAGIC):
        raise UnknownFormatError(
            f"{path}: not an AEDAT 2.0 file (the first line should be {MAGIC!r}, got "
            f"{lines[0][:20] if lines else b''!r})"
        )
    chip = ""
    for line in lines:
        text = line.decode("latin-1")
        if text.startswith("# AEChip:"):
            chip = text.split(":", 1)[1].strip()
    chip_lay, chip_size = chip_layout(chip)
    name = layout or chip_lay
    if name not in LAYOUTS:
        raise UnknownFormatError(
            f"{path}: cannot tell the address layout from AEChip {chip!r}; pass "
            f"layout='dvs128' or layout='davis' (got layout={layout!r})"
        )
    if layout is not None and chip_lay is not None and layout != chip_lay:
        # the caller's word wins, but a header that names another chip usually means the
        # events will decode to other addresses (a DVS128 file read as DAVIS keeps about
        # half of its events, at wrong coordinates), so it is said
        warnings.warn(
            f"{path}: the header names AEChip {chip!r}, whose layout is {chip_lay!r}, but "
            f"layout={layout!r} was passed; the events are decoded as {layout!r}. Leave "
            "layout out to follow the header", UserWarning, stacklevel=4)  # fmt: skip
    if sensor_size is None and chip_size is not None and (layout is None or layout == chip_lay):
        sensor_size = (*chip_size, 2)
    meta = {"chip": chip, "layout": name, "header_lines": len(lines)}
    return AEDAT2Source(path, report, sensor_size, meta, offset, LAYOUTS[name])
