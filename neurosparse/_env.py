"""Environment switches read on every call, at the cost of a dict lookup.

``os.environ.get`` encodes the name and decodes the value on every read: 1.75 µs on the
2-core VM, and an eager CUDA layer call reads three or four switches
(``NEUROSPARSE_KERNELS``, ``NEUROSPARSE_CHECK_FINITE_GPU``,
``NEUROSPARSE_CUDA_FAST_LAUNCH``, ...). On POSIX ``os.environ`` keeps its values in a
dict of bytes that every write through ``os.environ`` updates (``monkeypatch.setenv``,
``mock.patch.dict`` included), so looking the encoded name up there is the same read
without the name's encoding: 0.04 µs. Where that dict is not there (another OS, another
interpreter), or ``os.environ`` itself was replaced, :func:`getenv` is ``os.environ.get``.
Like ``os.environ.get``, it does not see ``os.putenv`` calls made around ``os.environ``.
"""

from __future__ import annotations

import os

_ENVIRON = os.environ
_DATA = getattr(_ENVIRON, "_data", None)
if os.name != "posix" or not isinstance(_DATA, dict):
    _DATA = None
_KEYS: dict[str, bytes] = {}  # name -> its key in _DATA
_VALUES: dict[bytes, str] = {}  # raw value -> decoded (switch values are few and short)


def getenv(name: str, default: str | None = None) -> str | None:
    """``os.environ.get(name, default)``, without the codec work on a hit (module doc)."""
    if _DATA is None or os.environ is not _ENVIRON:
        return os.environ.get(name, default)
    key = _KEYS.get(name)
    if key is None:
        key = _KEYS[name] = _ENVIRON.encodekey(name)
    raw = _DATA.get(key)
    if raw is None:
        return default
    value = _VALUES.get(raw)
    if value is None:
        value = _ENVIRON.decodevalue(raw)
        if len(_VALUES) < 256:  # bounded: a value that changes every call stays uncached
            _VALUES[raw] = value
    return value
