"""Exception classes of neurosparse.

Every error is a subclass of :class:`NeurosparseError` *and* of the builtin a user
would catch for that kind of mistake (``ValueError``, ``TypeError``, ...), so both
``except ns.errors.ShapeError`` and ``except ValueError`` work.
"""

from __future__ import annotations


class NeurosparseError(Exception):
    """Base class of every exception raised on purpose by neurosparse."""


class ShapeError(NeurosparseError, ValueError):
    """A tensor or array has the wrong rank or size."""


class DTypeError(NeurosparseError, TypeError):
    """A tensor or array has a dtype the operation does not support."""


class ParameterError(NeurosparseError, ValueError):
    """A constructor or function argument is out of its valid range."""


class DeviceError(NeurosparseError, ValueError):
    """Tensors live on different devices, or on a device the op cannot use."""


class InputValueError(NeurosparseError, ValueError):
    """Input values are invalid (NaN/inf spikes, coordinates outside the sensor, ...)."""


class KernelUnavailableError(NeurosparseError, RuntimeError):
    """A kernel was requested explicitly (``NEUROSPARSE_KERNELS=numba``) but cannot run."""


class EventFileError(NeurosparseError, ValueError):
    """An event file is empty, truncated, corrupt or not of the expected format."""


class UnknownFormatError(EventFileError):
    """The format of an event file could not be detected or is not supported."""


class TruncatedFileError(EventFileError):
    """An event file ends inside a word, packet or header (truncated download or copy)."""


class CorruptDataError(EventFileError):
    """A word, packet or dataset of an event file is not valid for its format."""


class ImplausibleHeaderError(EventFileError):
    """A header field is impossible for the format (e.g. a sensor width of 2**31 - 1)."""


class TimestampOrderError(EventFileError):
    """Timestamps go backwards in a format whose recordings are in time order."""


class EventOutsideSensorError(EventFileError, InputValueError):
    """Events lie outside the sensor size (the header's, the format's or ``sensor_size=``)."""


class EventFileNotFoundError(NeurosparseError, FileNotFoundError):
    """An event file or dataset folder does not exist."""


class CheckpointError(ParameterError):
    """A checkpoint / cache file is not ours, holds more than tensors and plain types, or
    cannot be stored so that it loads with ``torch.load(weights_only=True)``."""


class UnknownHardwareError(NeurosparseError, ValueError):
    """A hardware profile name is not known, or a custom profile is malformed."""


class CorruptDataWarning(UserWarning):
    """Data was skipped because the user asked for ``errors="skip"``; says how much."""


class UncountedWorkWarning(UserWarning):
    """A module the energy meter cannot count ran while metered: its work is missing from
    the totals (the warning names it)."""


__all__ = [
    "NeurosparseError",
    "ShapeError",
    "DTypeError",
    "ParameterError",
    "DeviceError",
    "InputValueError",
    "KernelUnavailableError",
    "EventFileError",
    "UnknownFormatError",
    "TruncatedFileError",
    "CorruptDataError",
    "ImplausibleHeaderError",
    "TimestampOrderError",
    "EventOutsideSensorError",
    "EventFileNotFoundError",
    "CheckpointError",
    "UnknownHardwareError",
    "CorruptDataWarning",
    "UncountedWorkWarning",
]
