"""Tonic dataset classes that never download: a missing dataset raises a clear error.

Each class keeps Tonic's name, because Tonic puts a dataset under ``save_to/<class
name>``; only the download (and POKERDVS's copy of local archives) is replaced.
"""

from __future__ import annotations

import os

import tonic.datasets as td

from ..errors import EventFileNotFoundError


def _missing(self) -> None:
    name = type(self).__name__
    where = os.path.join(self.location_on_system, getattr(self, "folder_name", "") or "")
    raise EventFileNotFoundError(
        f"{name} is not on disk: expected its files under {where!r} (Tonic's layout; "
        f"archive {getattr(self, 'filename', '?')!r}). neurosparse never downloads: fetch it "
        f"once with tonic.datasets.{name}(save_to=...) on a machine with internet, or extract "
        "the archive there, then pass the same root"
    )


class DVSGesture(td.DVSGesture):
    download = _missing


class SHD(td.SHD):
    download = _missing


class CIFAR10DVS(td.CIFAR10DVS):
    download = _missing


class POKERDVS(td.POKERDVS):
    download = _missing
    _copy_and_extract_local_data = _missing


class NCALTECH101(td.NCALTECH101):
    download = _missing
