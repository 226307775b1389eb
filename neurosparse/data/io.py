"""``read_events`` / ``iter_events``: one entry point for every supported event format.

The format is taken from ``format=`` or detected from the file's magic bytes / header,
then from its extension. Every reader returns :class:`~neurosparse.data.EventArray`
(fields t µs int64, x, y int16, p int8, plus ``sensor_size`` and ``meta``).
"""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Iterator
from typing import Any

from ..errors import (
    CorruptDataError,
    EventFileError,
    EventFileNotFoundError,
    NeurosparseError,
    ParameterError,
    TruncatedFileError,
    UnknownFormatError,
)
from . import fmt_aedat2, fmt_aedat3, fmt_aedat4, fmt_hdf5, fmt_nmnist, fmt_prophesee
from ._report import Report, check_errors
from ._source import Source
from .events import EventArray

_OPENERS = {
    "nmnist": fmt_nmnist.open_source,
    "aedat2": fmt_aedat2.open_source,
    "aedat3": fmt_aedat3.open_source,
    "aedat4": fmt_aedat4.open_source,
    "dat": fmt_prophesee.open_dat,
    "evt2": fmt_prophesee.open_evt("evt2"),
    "evt3": fmt_prophesee.open_evt("evt3"),
    "hdf5": fmt_hdf5.open_source,
}
FORMATS = tuple(_OPENERS)

# the arguments every entry point shares (path, then format=, errors=, sensor_size=)
PathArg = str | os.PathLike
SizeArg = tuple[int, ...] | None

_MAGIC = (
    (b"#!AER-DAT2.0", "aedat2"),
    (b"#!AER-DAT3.1", "aedat3"),
    (b"#!AER-DAT4.0", "aedat4"),
    (b"\x89HDF\r\n\x1a\n", "hdf5"),
)
_EXT = {
    ".bin": "nmnist",
    ".aedat4": "aedat4",
    ".dat": "dat",
    ".h5": "hdf5",
    ".hdf5": "hdf5",
}


@contextlib.contextmanager
def _only_our_errors(path: str, fmt: str):
    """Last line of defence: a reader lets only neurosparse's exceptions out.

    Each format raises its specific errors itself; anything else a damaged file provokes
    in a library below (h5py, lz4, struct, numpy) becomes a :class:`CorruptDataError`
    with the original kept as ``__cause__``.
    """
    try:
        yield
    except (NeurosparseError, MemoryError):  # out of memory is the machine's, not the file's
        raise
    except Exception as exc:  # noqa: BLE001 - re-raised as ours, cause kept
        raise CorruptDataError(
            f"{path}: cannot decode as {fmt} ({type(exc).__name__}: {exc}); the file is "
            f"damaged or not a {fmt} file (pass format= if the detection was wrong); if "
            "the file reads elsewhere, please report this with the file"
        ) from exc


def _check_path(path: str | os.PathLike) -> str:
    p = os.fspath(path)
    try:
        st = os.stat(p)
    except FileNotFoundError:
        raise EventFileNotFoundError(f"event file {p!r} does not exist") from None
    if stat.S_ISDIR(st.st_mode):
        raise EventFileError(f"{p!r} is a directory; pass one event file")
    if st.st_size == 0:
        raise EventFileError(f"{p!r} is empty (0 bytes): no header, no events")
    return p


def detect_format(path: str | os.PathLike) -> str:
    """Name of the format of ``path`` (one of :data:`FORMATS`), from magic bytes, then extension."""
    return _detect(_check_path(path))[0]


def _detect(p: str) -> tuple[str, tuple | None]:
    """The format, and the Prophesee header where detecting it parsed one (else None)."""
    with open(p, "rb") as f:
        head = f.read(4096)
    for magic, fmt in _MAGIC:
        if len(head) < len(magic) and magic.startswith(head):
            # the whole file is the start of a magic line: not an unknown format, a cut one
            raise TruncatedFileError(
                f"{p}: the file ends inside its header, at byte {len(head)}: its "
                f"{len(head)} byte(s) {head!r} are only the start of a magic line such as "
                f"{magic!r}; the file was cut (truncated download or copy): copy or "
                "download it again"
            )
        if head.startswith(magic):
            return fmt, None
    if head.startswith(b"#!AER-DAT"):
        raise UnknownFormatError(
            f"{p}: AEDAT version {head[9:12].decode('latin-1')!r} is not supported "
            "(supported: 2.0, 3.1, 4.0)"
        )
    ext = os.path.splitext(p)[1].lower()
    if head.startswith(b"Event Stream"):
        raise UnknownFormatError(
            f"{p}: an Event Stream (.es) file; this format is not supported yet (it is "
            "read by the 'loris' package; supported: " + ", ".join(FORMATS) + ")"
        )
    if ext == ".aedat":  # every supported AEDAT version starts with its '#!AER-DAT' line
        raise UnknownFormatError(
            f"{p}: an .aedat file without the '#!AER-DAT' version line: AEDAT 1.0 or a "
            "headerless recording (e.g. NAS audio); not supported yet (supported AEDAT "
            "versions: 2.0, 3.1, 4.0)"
        )
    if head.startswith(b"%"):
        header = fmt_prophesee.parse_header(p)
        keys = header[0]
        version = fmt_prophesee.raw_version(keys)
        if ext == ".dat" and (not version or "version" in keys):
            return "dat", header  # DAT headers write '% Version 2', never an EVT encoding
        if version:  # the header names its encoding: it wins over a '.dat' name
            return version, header
        if "evt" in keys:
            raise UnknownFormatError(
                f"{p}: Prophesee RAW encoding 'evt {keys['evt']}' is not supported (EVT 2.0 "
                "and 3.0 are; EVT 2.1 is another encoding)"
            )
        if "version" in keys:  # DAT files write '% Version 2', RAW files '% evt ...'
            return "dat", header
    if ext in _EXT:
        return _EXT[ext], None
    raise UnknownFormatError(
        f"cannot tell the event format of {p!r} from its first bytes {head[:16]!r} or its "
        f"extension {ext!r}; pass format= one of {list(FORMATS)}"
    )


def open_events(path: PathArg, format: str | None = None, errors: str = "raise",
                sensor_size: SizeArg = None, **options: Any) -> Source:
    """Parse the header of ``path`` and return its :class:`~._source.Source` (advanced use)."""
    check_errors(errors)
    p = _check_path(path)
    with _only_our_errors(p, format or "an event file"):
        fmt, header = _detect(p) if format is None else (format, None)
    if fmt not in _OPENERS:
        raise UnknownFormatError(f"format must be one of {list(FORMATS)}, got {fmt!r}")
    if sensor_size is not None:
        sensor_size = tuple(int(s) for s in sensor_size)
        if len(sensor_size) == 2:
            sensor_size = (*sensor_size, 2)
        if len(sensor_size) != 3 or min(sensor_size) < 1:
            raise ParameterError(f"sensor_size must be (W, H[, P]) >= 1, got {sensor_size}")
    report = Report(p, errors)
    if header is not None:  # parsed while detecting: the opener need not read it again
        options = {**options, "_header": header}
    with _only_our_errors(p, fmt):
        return _OPENERS[fmt](p, report, sensor_size, **options)


def read_events(path: PathArg, format: str | None = None, errors: str = "raise",
                sensor_size: SizeArg = None, **options: Any) -> EventArray:
    """Read every event of an event-camera recording.

    Parameters
    ----------
    path
        The file. Formats: N-MNIST/N-Caltech101 ``.bin``, AEDAT 2.0 / 3.1 / 4.0, Prophesee
        DAT, EVT 2.0 and EVT 3.0 ``.raw``, HDF5 (``events/``, ``raw_events/`` t/x/y/p, or
        SHD-style ``spikes/times`` + ``spikes/units``).
    format
        One of :data:`FORMATS`; default: detected from the header, then the extension.
    errors
        ``"raise"`` (default): a truncated file, a corrupt word / packet, an impossible
        header, events outside the sensor and (in formats recorded in time order: N-MNIST,
        AEDAT 2 / 4, DAT, EVT 2.0) timestamps going backwards raise a subclass of
        :class:`~neurosparse.errors.EventFileError` naming the byte / word / event.
        ``"skip"``: drop them and emit one :class:`~neurosparse.errors.CorruptDataWarning`
        counting what was dropped. Header errors and unknown formats raise in both modes.
    sensor_size
        ``(W, H[, P])``: overrides the header's and checks every event against it. Without
        it (and no size in the file) N-MNIST / N-Caltech101 ``.bin`` events are checked
        against 240 x 180, the largest N-Caltech101 recording.
    **options
        Format options: ``layout="dvs128"|"davis"`` (AEDAT 2.0), ``stream=`` (AEDAT 4
        stream id), ``index=`` (sample of a multi-sample SHD file).

    Returns
    -------
    EventArray
        Events in file order with ``.sensor_size`` (``None`` when unknown) and ``.meta``.
    """
    src = open_events(path, format, errors, sensor_size, **options)
    with _only_our_errors(src.path, src.fmt):
        ev = src.read()
        if src.ordered:
            ev = src.report.in_order(ev, src.fmt)
    src.report.finish()
    src.meta["dropped"] = src.report.dropped()
    return EventArray(ev, src.sensor_size, src.meta)


def iter_events(path: PathArg, chunk_events: int = 1_000_000, format: str | None = None,
                errors: str = "raise", sensor_size: SizeArg = None,
                **options: Any) -> Iterator[EventArray]:
    """Yield the events of ``path`` in chunks of at most ``chunk_events``, in bounded memory.

    Chunks are full (exactly ``chunk_events``) except the last, and in AEDAT 3.1 and
    AEDAT 4 files, where a chunk may also end where a packet ends.

    Same arguments and the same events (concatenated) as :func:`read_events`; the file is
    read block by block through one reused buffer, with decoder state (timestamp wraps,
    EVT 3 addresses) carried across blocks. Each block is checked before the next is read,
    so in a file with several kinds of damage the first error raised may be another
    :class:`~neurosparse.errors.EventFileError` subclass than :func:`read_events`'s, which
    checks the whole file for corrupt words before it checks time order.
    """
    if int(chunk_events) < 1:
        raise ParameterError(f"chunk_events must be >= 1, got {chunk_events!r}")
    src = open_events(path, format, errors, sensor_size, **options)
    return _iterate(src, int(chunk_events))


def _iterate(src: Source, chunk_events: int) -> Iterator[EventArray]:
    try:
        with _only_our_errors(src.path, src.fmt):
            for block in src.blocks(chunk_events):
                if src.ordered:
                    block = src.report.in_order(block, src.fmt)
                if block.shape[0]:
                    yield EventArray(block, src.sensor_size, src.meta)
    finally:  # also when the caller stops early: what was dropped so far is reported
        src.report.finish()


__all__ = ["FORMATS", "detect_format", "open_events", "read_events", "iter_events"]
